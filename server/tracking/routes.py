"""GET /api/v1/public/requests/{tracking_token}: the citizen's tracking view."""

from __future__ import annotations

from litestar import Controller, get
from litestar.params import FromPath

from server.accounts.auth import public_guard
from server.params import AppSettings, Tx
from server.tracking import service
from server.tracking.service import CitizenRequestStatus


class TrackingController(Controller):
    """Tracking for citizens (the PWA's citizen page; intake is server/requests/routes.py)."""

    path = "/api/v1/public/requests"
    tags = ["citizens"]
    guards = [public_guard]

    @get("/{tracking_token:str}", operation_id="trackCitizenRequest")
    async def track(
        self, tx: Tx, settings: AppSettings, tracking_token: FromPath[str]
    ) -> CitizenRequestStatus:
        return await service.track(tx, settings, tracking_token)
