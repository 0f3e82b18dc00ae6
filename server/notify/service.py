"""Citizen notifications: subscriptions, the outbox rows written with each change, payloads.

Nothing here talks to a push service. Changes write ``PushMessage`` rows in their own
transaction (``work_order_changed`` in server/events.py calls :func:`work_order_changed`); the
delivery job (server/notify/jobs.py) sends them. What a citizen is told follows the *citizen
state* of the request — received, scheduled, completed, cancelled — plus "reopened": each
subscription remembers the state it was last told, so a reassignment, a crew going en route or
an order put on hold is not news, and reporters of requests merged into one work order are all
told (every subscription of every linked request gets the row). See docs/notifications.md.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import UnsupportedAlgorithm
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.dbtypes import utcnow
from server.errors import Invalid
from server.i18n import MESSAGES, translate
from server.notify.models import (
    PushMessage,
    PushSubscription,
    SubscribeBody,
    SubscriptionPublic,
)
from server.notify.webpush import (
    MAX_PAYLOAD_BYTES,
    VapidKeys,
    push_topic,
    validate_subscription,
)
from server.requests.models import ServiceRequest, ServiceType
from server.requests.service import request_by_token
from server.settings import ConfigError, Settings
from server.workorders.models import WorkOrder
from sync.states import OPEN_STATUSES

MAX_SUBSCRIPTIONS_PER_REQUEST = 10
OPEN = frozenset(s.value for s in OPEN_STATUSES)
URGENCY = {
    "received": "low",
    "scheduled": "normal",
    "completed": "normal",
    "cancelled": "normal",
    "reopened": "normal",
}
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def citizen_state(work_order_status: str | None) -> str:
    """What a citizen sees of a request, from its work order's status (None: no order yet)."""
    if work_order_status is None or work_order_status == "new":
        return "received"
    if work_order_status == "completed":
        return "completed"
    if work_order_status == "cancelled":
        return "cancelled"
    return "scheduled"


def endpoint_hash(endpoint: str) -> str:
    return hashlib.sha256(endpoint.encode("utf-8")).hexdigest()


def endpoint_allowed(endpoint: str, allowed_hosts: tuple[str, ...]) -> bool:
    """Only known push services (docs/adr/0041); plain http only for an allowed loopback host.

    A URL whose authority carries user-info (``user@``), a backslash or a percent sign is
    refused outright: parsers disagree on where such a host ends (``https://127.0.0.1\\@fcm
    .googleapis.com/x`` is FCM to urlsplit and 127.0.0.1 to others, issue 12)."""
    if "\\" in endpoint or any(ord(c) < 0x21 or ord(c) == 0x7F for c in endpoint):
        return False
    try:
        parts = urlsplit(endpoint)
        host = (parts.hostname or "").lower()
    except ValueError:  # e.g. a bracketed host that is not an IPv6 address
        return False
    if "@" in parts.netloc or "%" in parts.netloc:
        return False
    if not host:
        return False
    if parts.scheme != "https" and not (parts.scheme == "http" and host in _LOOPBACK):
        return False
    for pattern in allowed_hosts:
        if pattern == "*":
            return True
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]):
                return True
        elif host == pattern:
            return True
    return False


def _host_of(endpoint: str) -> str:
    try:
        return (urlsplit(endpoint).hostname or "?")[:100]
    except ValueError:
        return "?"


def tracking_url(settings: Settings, tracking_token: str) -> str:
    """The citizen's tracking page in the PWA."""
    return f"{settings.public_url.rstrip('/')}/#/suivi/{tracking_token}"


async def _params(tx: AsyncSession, request: ServiceRequest, wo: Any | None) -> dict[str, Any]:
    st = await tx.get(ServiceType, request.service_type_id)
    assert st is not None
    return {
        "service_fr": st.name_fr,
        "service_en": st.name_en,
        "address": request.address,
        "outcome": getattr(wo, "outcome", None),
        "work_order_id": getattr(wo, "id", None),
    }


async def _enqueue(
    tx: AsyncSession,
    subscription: PushSubscription,
    request: ServiceRequest,
    kind: str,
    params: dict[str, Any],
    *,
    quiet_exempt: bool = False,
) -> PushMessage:
    """Write one outbox row; older pending rows for the same request and browser are superseded.

    Rows under a live claim (being sent right now) are left alone, and so is a pending
    confirmation (``quiet_exempt``): it answers the citizen's own action and goes out at once,
    while the newer status push may be held for quiet hours (issue 19). The delivery job sends
    a browser's rows oldest first, one at a time (server/notify/jobs.py).
    """
    now = utcnow()
    assert subscription.id is not None and request.id is not None
    await tx.execute(
        update(PushMessage)
        .where(
            col(PushMessage.subscription_id) == subscription.id,
            col(PushMessage.request_id) == request.id,
            col(PushMessage.state) == "pending",
            col(PushMessage.quiet_exempt).is_(False),
            (col(PushMessage.claimed_until).is_(None)) | (col(PushMessage.claimed_until) < now),
        )
        .values(state="superseded", finished_at=now)
    )
    message = PushMessage(
        subscription_id=subscription.id,
        request_id=request.id,
        kind=kind,
        language=subscription.language,
        params=params,
        urgency=URGENCY[kind],
        quiet_exempt=quiet_exempt,
        next_attempt_at=now,
    )
    tx.add(message)
    return message


async def subscribe(
    tx: AsyncSession,
    tracking_token: str,
    body: SubscribeBody,
    language: str,
    settings: Settings,
) -> SubscriptionPublic:
    """Bind a browser to a request; a new binding gets a confirmation push at once."""
    data = body.subscription.model_dump()
    try:
        validate_subscription(data)
    except ValueError as exc:
        raise Invalid("push_subscription_invalid", reason=str(exc)) from exc
    endpoint = body.subscription.endpoint
    if not endpoint_allowed(endpoint, settings.push_endpoint_hosts):
        raise Invalid("push_endpoint_not_allowed", host=_host_of(endpoint))
    request = await request_by_token(tx, tracking_token)
    digest = endpoint_hash(endpoint)
    existing = (
        await tx.execute(
            select(PushSubscription).where(
                col(PushSubscription.request_id) == request.id,
                col(PushSubscription.endpoint_hash) == digest,
            )
        )
    ).scalar_one_or_none()
    now = utcnow()
    if existing is not None:
        existing.p256dh = body.subscription.keys.p256dh
        existing.auth = body.subscription.keys.auth
        existing.language = language
        existing.updated_at = now
        tx.add(existing)
        await tx.flush()
        return SubscriptionPublic(language=language, created=False)
    assert request.id is not None
    count = (
        await tx.execute(select(func.count()).where(col(PushSubscription.request_id) == request.id))
    ).scalar_one()
    if count >= MAX_SUBSCRIPTIONS_PER_REQUEST:
        raise Invalid("push_subscriptions_limit", limit=MAX_SUBSCRIPTIONS_PER_REQUEST)
    wo = await tx.get(WorkOrder, request.work_order_id) if request.work_order_id else None
    state = citizen_state(wo.status if wo else None)
    subscription = PushSubscription(
        request_id=request.id,
        endpoint=endpoint,
        endpoint_hash=digest,
        p256dh=body.subscription.keys.p256dh,
        auth=body.subscription.keys.auth,
        language=language,
        last_state=state,
    )
    tx.add(subscription)
    await tx.flush()
    # The confirmation tells where the request stands now ("received" for a fresh request): the
    # citizen just asked for it, so it is not held for quiet hours.
    await _enqueue(
        tx, subscription, request, state, await _params(tx, request, wo), quiet_exempt=True
    )
    await tx.flush()
    return SubscriptionPublic(language=language, created=True)


async def unsubscribe(tx: AsyncSession, tracking_token: str, endpoint: str) -> None:
    """Forget this browser for this request (idempotent); its pending pushes are dropped."""
    request = await request_by_token(tx, tracking_token)
    found = (
        await tx.execute(
            select(PushSubscription).where(
                col(PushSubscription.request_id) == request.id,
                col(PushSubscription.endpoint_hash) == endpoint_hash(endpoint),
            )
        )
    ).scalar_one_or_none()
    if found is None or found.id is None:
        return
    await forget_subscriptions(tx, [found.id], final_state="superseded")


async def forget_subscriptions(
    tx: AsyncSession, subscription_ids: list[int], *, final_state: str
) -> None:
    """Delete subscriptions; their pending rows end in `final_state`, history rows are kept."""
    if not subscription_ids:
        return
    now = utcnow()
    await tx.execute(
        update(PushMessage)
        .where(
            col(PushMessage.subscription_id).in_(subscription_ids),
            col(PushMessage.state) == "pending",
        )
        .values(state=final_state, finished_at=now, claimed_until=None)
    )
    await tx.execute(
        update(PushMessage)
        .where(col(PushMessage.subscription_id).in_(subscription_ids))
        .values(subscription_id=None)
    )
    for sub in (
        await tx.execute(
            select(PushSubscription).where(col(PushSubscription.id).in_(subscription_ids))
        )
    ).scalars():
        await tx.delete(sub)
    await tx.flush()


async def work_order_changed(
    tx: AsyncSession, wo: Any, before: dict[str, Any], linked_requests: Sequence[Any] | None = None
) -> None:
    """Events hook: tell every subscriber of every linked request what changed for them.

    ``linked_requests``: the order's requests if the caller loaded them; none, no subscriber."""
    state = citizen_state(wo.status)
    was = before.get("status")
    reopened = was is not None and was not in OPEN and wo.status in OPEN
    if state == "received" and not reopened:
        return  # back in the queue (unassigned) is not news; nor is a brand-new order
    if linked_requests is not None and not linked_requests:
        return  # subscriptions belong to requests: nobody to tell
    rows = (
        await tx.execute(
            select(PushSubscription, ServiceRequest)
            .join(ServiceRequest, col(ServiceRequest.id) == col(PushSubscription.request_id))
            .where(col(ServiceRequest.work_order_id) == wo.id)
            .order_by(col(PushSubscription.id))
        )
    ).all()
    params_by_request: dict[int, dict[str, Any]] = {}
    for subscription, request in rows:
        if reopened:
            if subscription.last_state not in ("completed", "cancelled"):
                continue
            kind = "reopened"
        elif subscription.last_state == state:
            continue
        else:
            kind = state
        assert request.id is not None
        if request.id not in params_by_request:
            params_by_request[request.id] = await _params(tx, request, wo)
        await _enqueue(tx, subscription, request, kind, params_by_request[request.id])
        subscription.last_state = state
        subscription.updated_at = utcnow()
        tx.add(subscription)
    if rows:
        await tx.flush()


# --- payloads --------------------------------------------------------------------------------


def _outcome_text(outcome: str | None, language: str) -> str:
    key = f"notify_outcome_{outcome}" if outcome else "notify_outcome_none"
    if key not in MESSAGES:
        key = "notify_outcome_none"
    return translate(key, language)


def render_payload(
    message: PushMessage,
    tracking_token: str,
    settings: Settings,
    photo_url: str | None = None,
) -> dict[str, Any]:
    """The JSON the service worker shows: title, body, url, tag; always under 3000 bytes."""
    language = message.language if message.language in ("fr", "en") else "fr"
    params = message.params
    outcome = _outcome_text(params.get("outcome"), language)
    if message.kind == "cancelled":
        outcome = (outcome[:1].upper() + outcome[1:]) if params.get("outcome") else ""
    address = str(params.get("address") or "—")[:200]
    service = str(params.get(f"service_{language}") or params.get("service_fr") or "")[:120]
    title = translate(f"notify_{message.kind}_title", language)
    body = translate(
        f"notify_{message.kind}_body", language, service=service, address=address, outcome=outcome
    ).strip()
    payload: dict[str, Any] = {
        "v": 1,
        "kind": message.kind,
        "title": title,
        "body": body,
        "url": tracking_url(settings, tracking_token),
        "tag": push_topic(f"request:{message.request_id}"),
        "lang": language,
    }
    if photo_url and message.kind == "completed":
        payload["image"] = photo_url
    while _size(payload) > MAX_PAYLOAD_BYTES:  # only a huge public_url or photo URL gets here
        if "image" in payload:
            del payload["image"]
        elif len(payload["body"]) > 2:
            payload["body"] = payload["body"][: len(payload["body"]) // 2 - 1] + "…"
        else:
            raise ValueError("TOURNEE_PUBLIC_URL is too long for a push payload")
    return payload


def _size(payload: dict[str, Any]) -> int:
    return len(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def load_vapid_keys(settings: Settings) -> VapidKeys:
    """The VAPID key pair: TOURNEE_VAPID_PRIVATE_KEY is a PEM, or a file (created when missing).

    Every process that sends pushes must use the same key: on several machines, give them all
    the same PEM (the default file under ./var is per machine).
    """
    configured = settings.vapid_private_key.strip()
    inline = configured.startswith("-----BEGIN")
    try:
        if inline:
            return VapidKeys.from_pem(configured.encode("ascii"))
        return VapidKeys.load_or_create(configured or settings.var_dir / "vapid_private.pem")
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        where = "the PEM in TOURNEE_VAPID_PRIVATE_KEY" if inline else f"the file {configured}"
        raise ConfigError(
            f"TOURNEE_VAPID_PRIVATE_KEY: {where} is not an unencrypted P-256 (EC) private key PEM"
        ) from exc
