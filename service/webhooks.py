"""Webhooks: who hears of what, the signed message a receiver gets, where it may be sent, and each
delivery's life (pending → delivered, or failed after its last retry).

Messages follow the Standard Webhooks specification (https://www.standardwebhooks.com/, v1): the headers
`webhook-id` (the same on every retry), `webhook-timestamp` (seconds, per attempt) and `webhook-signature`
(`v1,` and the base64 HMAC-SHA256 of `id.timestamp.body` under the secret's key), and a body of
`{"type", "timestamp", "data"}` whose data is the job, checkpoint or experiment as the REST API returns it.

Deliveries are an outbox: a lifecycle transition writes them in its own transaction, so a committed event
is never lost, and the webhook sender (worker.webhooks, Celery tasks in their own process) POSTs them,
never the trainer or a request. The HTTP attempt itself is worker.webhook_sender's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import secrets
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from service.db import Database
from service.errors import Conflict, InvalidInput, NotFound
from service.models import Webhook, WebhookDelivery, is_id, utcnow
from service.principal import Principal
from service.repositories.jobs import decode_cursor, encode_cursor
from service.settings import Settings
from service.states import DeliveryState, WebhookEvent

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)
SECRET_BYTES = 32
MAX_URL_CHARS = 2048
ERROR_CHARS = 500  # the webhook_deliveries.last_error column
SCHEMES = {"http": 80, "https": 443}
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


# --- signing (Standard Webhooks v1) ---------------------------------------------------------------


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def new_message_id() -> str:
    return f"msg_{secrets.token_hex(16)}"


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature header: the key is the secret's base64 part, decoded."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, message_id, timestamp, body),
    }


def body(event: WebhookEvent, data: Any, at: datetime) -> str:
    return json.dumps(
        {"type": event.value, "timestamp": at.isoformat().replace("+00:00", "Z"), "data": data},
        separators=(",", ":"),
    )


# --- where a message may go -------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A receiver's URL taken apart: what to connect to and what to call it (Host, TLS server name)."""

    scheme: str
    host: str
    port: int
    path: str


def parse_url(url: str) -> Target:
    """An http(s) URL with a host and no credentials, or InvalidInput saying what is wrong with it."""

    def refuse(why: str) -> InvalidInput:
        return InvalidInput(f"webhook url {why}", [(("body", "url"), why)])

    if len(url) > MAX_URL_CHARS:
        raise refuse(f"is longer than {MAX_URL_CHARS} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise refuse(f"is not a URL: {exc}") from exc
    if parts.scheme not in SCHEMES:
        raise refuse("must be http or https")
    if not parts.hostname:
        raise refuse("has no host")
    if parts.username is not None or parts.password is not None:
        raise refuse("must not carry credentials; verify the signature instead")
    if parts.fragment:
        raise refuse("must not have a fragment")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, parts.hostname, port or SCHEMES[parts.scheme], path)


def refusal(address: Address, allowed: Sequence[str]) -> str | None:
    """Why a receiver may not be at `address` (None: it may). Only public addresses are allowed, or those
    in the allowed networks: loopback, private, link-local (the cloud metadata service, 169.254.169.254),
    shared, reserved and multicast ones are refused, also when written as IPv4-mapped IPv6."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in ipaddress.ip_network(block, strict=False) for block in allowed):
        return None
    if address.is_global and not address.is_multicast:
        return None
    kind = next(
        (
            name
            for name, flag in (
                ("loopback", address.is_loopback),
                ("link-local (metadata services live there)", address.is_link_local),
                ("private", address.is_private),
                ("multicast", address.is_multicast),
            )
            if flag
        ),
        "not public",
    )
    return f"{address} is {kind}"


Resolver = Callable[[str, int], list[str]]


class Unresolvable(ValueError):
    """The host has no address here (yet): not a refusal of where it points."""


def resolve(host: str, port: int) -> list[str]:
    return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})


def allowed_addresses(target: Target, allowed: Sequence[str], resolver: Resolver = resolve) -> list[Address]:
    """Every address the target's host resolves to, all permitted, or ValueError saying which is not. Every
    one is checked, so a name with one public and one private record cannot be used to reach the latter."""
    try:
        literal: Address | None = ipaddress.ip_address(target.host)
    except ValueError:
        literal = None
    if literal is not None:
        found = [literal]
    else:
        try:
            found = [ipaddress.ip_address(text.split("%", 1)[0]) for text in resolver(target.host, target.port)]
        except OSError as exc:
            raise Unresolvable(f"{target.host} does not resolve: {exc}") from exc
    if not found:
        raise Unresolvable(f"{target.host} has no address")
    for address in found:
        why = refusal(address, allowed)
        if why is not None:
            raise ValueError(f"{target.host} resolves to {why}; set WGAN_WEBHOOK_ALLOWED_NETWORKS to allow it")
    return found


def check_url(url: str, settings: Settings, resolver: Resolver = resolve) -> str:
    """A URL fit to register: its form, and (when its host resolves here) where it points. A name that does
    not resolve yet is accepted; every attempt resolves and checks again before it connects."""
    target = parse_url(url)
    try:
        allowed_addresses(target, settings.webhook_allowed_networks, resolver)
    except Unresolvable:
        pass
    except ValueError as exc:
        raise InvalidInput(f"webhook url refused: {exc}", [(("body", "url"), str(exc))]) from exc
    return url


# --- subscriptions --------------------------------------------------------------------------------


def subscribe(
    session: Session, principal: Principal, url: str, events: Sequence[WebhookEvent], description: str, limit: int
) -> Webhook:
    count = session.scalar(select(func.count()).select_from(Webhook).where(Webhook.owner_id == principal.owner_id)) or 0
    if count >= limit:
        raise Conflict(f"this owner has {count} webhooks, the most allowed (WGAN_MAX_WEBHOOKS_PER_OWNER); delete one")
    hook = Webhook(
        owner_id=principal.owner_id,
        url=url,
        events=sorted({event.value for event in events}),
        secret=new_secret(),
        description=description,
    )
    session.add(hook)
    session.flush()
    return hook


def owned(session: Session, principal: Principal, webhook_id: str) -> Webhook:
    """The principal's webhook (an admin's: anyone's), or NotFound, as another owner's job is."""
    hook = session.get(Webhook, webhook_id) if is_id(webhook_id) else None
    if hook is None or (hook.owner_id != principal.owner_id and not principal.is_admin):
        raise NotFound(f"no webhook {webhook_id}")
    return hook


def of_owner(session: Session, principal: Principal) -> Sequence[Webhook]:
    query = select(Webhook).order_by(Webhook.created_at.desc(), Webhook.id.desc())
    if not principal.is_admin:
        query = query.where(Webhook.owner_id == principal.owner_id)
    return session.scalars(query).all()


def unsubscribe(session: Session, principal: Principal, webhook_id: str) -> None:
    session.delete(owned(session, principal, webhook_id))


# --- deliveries --------------------------------------------------------------------------------------


class Outbox:
    """The deliveries a transition makes: one per subscribed webhook of the owner, written in the
    transition's own transaction. The owner's webhooks are read once per transaction, and a payload is
    rendered only when someone listens."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.made: list[str] = []
        self._hooks: dict[str, Sequence[Webhook]] = {}

    def add(self, owner_id: str, event: WebhookEvent, data: Callable[[], Any]) -> None:
        if owner_id not in self._hooks:
            self._hooks[owner_id] = self.session.scalars(select(Webhook).where(Webhook.owner_id == owner_id)).all()
        listening = [hook for hook in self._hooks[owner_id] if event.value in hook.events]
        if not listening:
            return
        now = utcnow()
        payload = body(event, data(), now)
        # One message, one id, to every receiver of it (as Standard Webhooks' reference service does).
        message_id = new_message_id()
        for hook in listening:
            self.made.append(_pending(self.session, hook.id, message_id, event.value, payload).id)


def _pending(session: Session, webhook_id: str, message_id: str, event: str, payload: str) -> WebhookDelivery:
    """A delivery due now, its first attempt still to make."""
    now = utcnow()
    delivery = WebhookDelivery(
        webhook_id=webhook_id,
        message_id=message_id,
        event=event,
        payload=payload,
        status=DeliveryState.PENDING,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(delivery)
    session.flush()
    return delivery


def retry_delay(attempts: int, settings: Settings) -> float:
    """Seconds from a failed attempt (the `attempts`-th) to the next: exponential, capped."""
    wait = settings.webhook_retry_first_seconds * settings.webhook_retry_factor ** (attempts - 1)
    return float(min(wait, settings.webhook_retry_max_seconds))


def lease_seconds(settings: Settings) -> float:
    # Longer than any attempt can take, so a lease still held means a sender is at it.
    return 2 * settings.webhook_timeout_seconds + 5


def deliveries(
    session: Session, principal: Principal, webhook_id: str, *, limit: int, cursor: str | None
) -> tuple[Sequence[WebhookDelivery], str | None]:
    """A webhook's deliveries, newest first, and the cursor of the next page (as the job list's). Raises
    ValueError on a cursor this service did not make."""
    hook = owned(session, principal, webhook_id)
    query = select(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id)
    if cursor is not None:
        created, last_id = decode_cursor(cursor)
        query = query.where(
            or_(
                WebhookDelivery.created_at < created,
                and_(WebhookDelivery.created_at == created, WebhookDelivery.id < last_id),
            )
        )
    order = (WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
    rows = session.scalars(query.order_by(*order).limit(limit + 1)).all()
    if len(rows) > limit:
        return rows[:limit], encode_cursor(rows[limit - 1])
    return rows, None


def redeliver(session: Session, principal: Principal, webhook_id: str, delivery_id: str) -> WebhookDelivery:
    """A new delivery of the same message (same webhook-id and body) with a fresh round of retries."""
    hook = owned(session, principal, webhook_id)
    old = session.get(WebhookDelivery, delivery_id) if is_id(delivery_id) else None
    if old is None or old.webhook_id != hook.id:
        raise NotFound(f"no delivery {delivery_id} of webhook {webhook_id}")
    if old.status is DeliveryState.PENDING:
        raise Conflict("the delivery is still being attempted; redeliver it once it has succeeded or failed")
    return _pending(session, hook.id, old.message_id, old.event, old.payload)


@dataclass(frozen=True)
class Attempt:
    """A delivery a sender holds the lease of: what to send, where, signed with what."""

    delivery_id: str
    message_id: str
    url: str
    secret: str
    payload: str
    attempt: int


def start_attempt(db: Database, settings: Settings, delivery_id: str) -> Attempt | None:
    """Take the lease of a due, pending delivery (one conditional UPDATE: of two senders one wins), or
    None when it is not due, already delivered or given up, leased by another sender, or gone."""
    now = utcnow()
    with db.transaction() as session:
        taken = session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.status == DeliveryState.PENDING,
                WebhookDelivery.next_attempt_at <= now,
                or_(WebhookDelivery.leased_until.is_(None), WebhookDelivery.leased_until < now),
            )
            .values(
                leased_until=now + timedelta(seconds=lease_seconds(settings)),
                attempts=WebhookDelivery.attempts + 1,
                last_attempt_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            return None
        row = session.get(WebhookDelivery, delivery_id, populate_existing=True)
        hook = session.get(Webhook, row.webhook_id) if row is not None else None
        if row is None or hook is None:
            return None
        return Attempt(row.id, row.message_id, hook.url, hook.secret, row.payload, row.attempts)


def finish_attempt(
    db: Database, settings: Settings, attempt: Attempt, status_code: int | None, error: str | None
) -> DeliveryState:
    """Record how the attempt went: a 2xx delivers; anything else is retried after retry_delay, or, after
    webhook_max_attempts, given up."""
    now = utcnow()
    with db.transaction() as session:
        row = session.get(WebhookDelivery, attempt.delivery_id, with_for_update=True)
        if row is None:  # its webhook was deleted meanwhile
            return DeliveryState.FAILED
        row.last_status_code = status_code
        row.last_error = None if error is None else error[:ERROR_CHARS]
        row.leased_until = None
        if status_code is not None and 200 <= status_code < 300 and error is None:
            row.status = DeliveryState.DELIVERED
            row.delivered_at = now
            row.next_attempt_at = None
        elif row.attempts >= settings.webhook_max_attempts:
            row.status = DeliveryState.FAILED
            row.next_attempt_at = None
        else:
            row.next_attempt_at = now + timedelta(seconds=retry_delay(row.attempts, settings))
        return row.status


def due(db: Database, limit: int) -> list[str]:
    """Pending deliveries whose time has come and that no sender holds: retries, and first tries whose
    task message was lost. The sweep sends those whose message the broker no longer holds."""
    now = utcnow()
    with db.reads() as session:
        query = (
            select(WebhookDelivery.id)
            .where(
                WebhookDelivery.status == DeliveryState.PENDING,
                WebhookDelivery.next_attempt_at <= now,
                or_(WebhookDelivery.leased_until.is_(None), WebhookDelivery.leased_until < now),
            )
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(limit)
        )
        return list(session.scalars(query).all())


def prune(db: Database, settings: Settings) -> int:
    """Drop finished deliveries older than the retention, so the table stays bounded."""
    before = utcnow() - timedelta(seconds=settings.webhook_retention_seconds)
    with db.transaction() as session:
        result = session.execute(
            delete(WebhookDelivery).where(
                WebhookDelivery.status != DeliveryState.PENDING, WebhookDelivery.created_at < before
            )
        )
        return int(result.rowcount)  # type: ignore[attr-defined]
