"""GET /api/v1/boroughs: the city's boroughs."""

from __future__ import annotations

from litestar import Controller, get

from server.accounts.auth import any_user_guard
from server.city import service
from server.city.models import BoroughPublic
from server.params import Tx


class BoroughController(Controller):
    path = "/api/v1/boroughs"
    tags = ["reference"]

    @get("/", operation_id="listBoroughs", guards=[any_user_guard])
    async def list_boroughs(self, tx: Tx) -> list[BoroughPublic]:
        return await service.list_boroughs(tx)
