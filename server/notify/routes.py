"""Citizen Web Push: the VAPID public key, and subscribing a browser to one request.

Public routes: a request's private tracking token is the credential, as on the tracking page.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, delete, get, post
from litestar.datastructures import State
from litestar.params import JSONBody, Parameter, QueryParameter

from server.accounts.auth import CurrentActor, dispatcher_guard, public_guard
from server.dbtypes import MAX_ID
from server.i18n import negotiate
from server.notify import notices, service
from server.notify.models import (
    NoticePage,
    NoticePublic,
    SubscribeBody,
    SubscriptionPublic,
    VapidPublicKey,
)
from server.params import AppSettings, DbId, Tx
from server.ratelimit import Rule, by_address, by_json_field, by_path_param, rate_limit_guard

TrackingToken = Annotated[str, Parameter(min_length=1, max_length=64)]


class PushKeyController(Controller):
    path = "/api/v1/public/push"
    tags = ["citizens"]
    guards = [public_guard]

    @get("/vapid-public-key", operation_id="getVapidPublicKey")
    async def vapid_public_key(self, state: State) -> VapidPublicKey:
        """The applicationServerKey to pass to ``pushManager.subscribe()``."""
        return VapidPublicKey(public_key=state.vapid.public_key_b64url)


class PushSubscriptionController(Controller):
    path = "/api/v1/public/requests/{tracking_token:str}/push-subscription"
    tags = ["citizens"]
    guards = [public_guard]

    @post(
        "/",
        operation_id="subscribeToRequest",
        status_code=201,
        guards=[
            rate_limit_guard(
                Rule("subscribe", lambda s: s.rate_limit_subscriptions, by_address),
                Rule(
                    "subscribe-token",
                    lambda s: s.rate_limit_subscriptions_token,
                    by_path_param("tracking_token"),
                ),
                Rule(
                    "subscribe-endpoint",
                    lambda s: s.rate_limit_subscriptions_endpoint,
                    by_json_field("subscription", "endpoint"),
                ),
            )
        ],
    )
    async def subscribe(
        self,
        tx: Tx,
        settings: AppSettings,
        request: Request[Any, Any, Any],
        tracking_token: TrackingToken,
        data: JSONBody[SubscribeBody],
    ) -> SubscriptionPublic:
        """Notify this browser when the request moves (language: body, else Accept-Language)."""
        language = data.language or negotiate(request.headers.get("accept-language"))
        return await service.subscribe(tx, tracking_token, data, language, settings)

    @delete("/", operation_id="unsubscribeFromRequest", status_code=204)
    async def unsubscribe(
        self,
        tx: Tx,
        tracking_token: TrackingToken,
        endpoint: Annotated[str, Parameter(min_length=1, max_length=2048)],
    ) -> None:
        """Stop notifying the browser whose push endpoint is `endpoint` (idempotent)."""
        await service.unsubscribe(tx, tracking_token, endpoint)


class NoticeController(Controller):
    """Notices for the dispatch desk (SLA escalations), newest first."""

    path = "/api/v1/notices"
    tags = ["dispatch"]
    guards = [dispatcher_guard]

    @get("/", operation_id="listNotices")
    async def list_notices(
        self,
        tx: Tx,
        open_only: Annotated[bool, QueryParameter(name="open")] = True,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
        before_id: Annotated[int | None, Parameter(ge=1, le=MAX_ID)] = None,
    ) -> NoticePage:
        """`open=true` (default): the notices no dispatcher has acknowledged yet."""
        items = await notices.list_notices(
            tx, open_only=open_only, limit=limit, before_id=before_id
        )
        return NoticePage(items=items)

    @post("/{notice_id:int}/acknowledge", operation_id="acknowledgeNotice", status_code=200)
    async def acknowledge(self, tx: Tx, actor: CurrentActor, notice_id: DbId) -> NoticePublic:
        """Take the notice off every console (idempotent)."""
        return await notices.acknowledge(tx, notice_id, actor)
