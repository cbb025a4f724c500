"""One delivery attempt over HTTP: resolve the receiver, refuse what it may not be, connect to the very
address that was checked, POST the signed message and read only its status. Bounded by one deadline,
whatever the receiver does (hangs, dribbles, redirects)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpx

from service import webhooks
from service.settings import Settings

USER_AGENT = "wgan-service-webhooks/1"


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None


def send(attempt: webhooks.Attempt, settings: Settings) -> Outcome:
    deadline = settings.webhook_timeout_seconds
    try:
        return asyncio.run(asyncio.wait_for(_post(attempt, settings), deadline))
    except TimeoutError:
        return Outcome(None, f"no answer within {deadline:g} s")


async def _post(attempt: webhooks.Attempt, settings: Settings) -> Outcome:
    target = webhooks.parse_url(attempt.url)
    try:
        # Checked again at every attempt: a name may point elsewhere now than when it was registered.
        addresses = await asyncio.to_thread(webhooks.allowed_addresses, target, settings.webhook_allowed_networks)
    except ValueError as exc:
        return Outcome(None, f"refused: {exc}")
    address = addresses[0]
    # Connect to the checked address itself, not the name again (which could resolve anywhere by then),
    # keeping the name for Host and for TLS (its SNI and certificate check).
    literal = f"[{address}]" if address.version == 6 else str(address)
    default_port = webhooks.SCHEMES[target.scheme] == target.port
    host_header = target.host if default_port else f"{target.host}:{target.port}"
    body = attempt.payload.encode()
    signed = webhooks.headers(attempt.secret, attempt.message_id, int(time.time()), body)
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    try:
        # No redirects (a 3xx is a failed attempt: following one could lead anywhere) and no proxies from
        # the environment (they would connect to the name, not the checked address).
        async with (
            httpx.AsyncClient(
                follow_redirects=False, trust_env=False, timeout=settings.webhook_timeout_seconds
            ) as client,
            client.stream(
                "POST",
                f"{target.scheme}://{literal}:{target.port}{target.path}",
                content=body,
                headers={**signed, "host": host_header, "user-agent": USER_AGENT},
                extensions=extensions,
            ) as response,
        ):
            code = response.status_code
    except httpx.HTTPError as exc:
        return Outcome(None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    if 200 <= code < 300:
        return Outcome(code, None)
    note = " (redirects are not followed)" if 300 <= code < 400 else ""
    return Outcome(code, f"answered {code}{note}")
