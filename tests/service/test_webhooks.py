"""The webhook rules themselves: signatures the Standard Webhooks reference library accepts, the address
guard as the sender applies it before each attempt, and the retry schedule."""

from __future__ import annotations

import ipaddress
import json
import time

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from service import webhooks
from service.models import utcnow
from service.settings import Settings
from service.states import WebhookEvent


def test_signatures_verify_with_the_reference_library() -> None:
    secret = webhooks.new_secret()
    body = webhooks.body(WebhookEvent.JOB_SUCCEEDED, {"id": "j", "status": "succeeded"}, utcnow()).encode()
    headers = webhooks.headers(secret, webhooks.new_message_id(), int(time.time()), body)
    assert Webhook(secret).verify(body, headers)["data"] == {"id": "j", "status": "succeeded"}
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace(b"succeeded", b"failed"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(webhooks.new_secret()).verify(body, headers)
    assert json.loads(body)["type"] == "job.succeeded"


def test_an_old_timestamp_is_refused_by_receivers() -> None:
    secret = webhooks.new_secret()
    body = b"{}"
    stale = webhooks.headers(secret, "msg_1", int(time.time()) - 3600, body)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, stale)


def resolver(*addresses: str) -> webhooks.Resolver:
    return lambda host, port: list(addresses)


def test_every_address_of_a_name_is_checked() -> None:
    target = webhooks.parse_url("https://hooks.example.com/in")
    assert webhooks.allowed_addresses(target, [], resolver("93.184.215.14")) == [ipaddress.ip_address("93.184.215.14")]
    # One public record does not let a private one through (nor a rebinding to the metadata service).
    for bad in ("10.0.0.5", "169.254.169.254", "::1", "::ffff:192.168.0.1", "fd00::1"):
        with pytest.raises(ValueError, match="resolves to"):
            webhooks.allowed_addresses(target, [], resolver("93.184.215.14", bad))
    assert webhooks.allowed_addresses(target, ["10.0.0.0/8"], resolver("10.0.0.5"))


def test_registration_accepts_a_name_that_does_not_resolve_yet() -> None:
    def failing(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    assert webhooks.check_url("https://later.example.com/", Settings(), failing) == "https://later.example.com/"
    target = webhooks.parse_url("https://later.example.com/")
    with pytest.raises(ValueError, match="does not resolve"):
        webhooks.allowed_addresses(target, [], failing)


def test_urls_are_taken_apart_for_the_sender() -> None:
    target = webhooks.parse_url("https://Example.com:8443/a/b?x=1")
    assert (target.scheme, target.host, target.port, target.path) == ("https", "example.com", 8443, "/a/b?x=1")
    assert webhooks.parse_url("http://example.com").path == "/"


def test_the_default_retries_span_about_a_day() -> None:
    settings = Settings.model_construct()  # the defaults, not the test environment's fast retries
    delays = [webhooks.retry_delay(n, settings) for n in range(1, settings.webhook_max_attempts)]
    assert delays[0] == settings.webhook_retry_first_seconds
    assert delays == sorted(delays) and max(delays) == settings.webhook_retry_max_seconds
    assert 18 * 3600 <= sum(delays) <= 30 * 3600
