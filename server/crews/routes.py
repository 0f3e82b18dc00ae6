"""Crews."""

from __future__ import annotations

from litestar import Controller, get, patch, post
from litestar.params import FromQuery, JSONBody

from server.accounts.auth import CurrentActor, admin_guard, dispatcher_guard
from server.crews import service
from server.crews.models import CrewCreate, CrewPublic, CrewUpdate
from server.crews.service import CrewLoadDep
from server.params import DbId, Tx


class CrewController(Controller):
    path = "/api/v1/crews"
    tags = ["crews"]

    @get("/", operation_id="listCrews", guards=[dispatcher_guard])
    async def list_crews(
        self,
        tx: Tx,
        crew_load: CrewLoadDep,
        borough: FromQuery[str | None] = None,
        kind: FromQuery[str | None] = None,
    ) -> list[CrewPublic]:
        return await service.list_crews(tx, crew_load, borough, kind)

    @get("/{crew_id:int}", operation_id="getCrew", guards=[dispatcher_guard])
    async def get_crew(self, tx: Tx, crew_load: CrewLoadDep, crew_id: DbId) -> CrewPublic:
        return await service.get_crew(tx, crew_id, crew_load)

    @post("/", operation_id="createCrew", guards=[admin_guard])
    async def create_crew(
        self, tx: Tx, actor: CurrentActor, crew_load: CrewLoadDep, data: JSONBody[CrewCreate]
    ) -> CrewPublic:
        return await service.create_crew(tx, data, actor, crew_load)

    @patch("/{crew_id:int}", operation_id="updateCrew", guards=[admin_guard])
    async def update_crew(
        self,
        tx: Tx,
        actor: CurrentActor,
        crew_load: CrewLoadDep,
        crew_id: DbId,
        data: JSONBody[CrewUpdate],
    ) -> CrewPublic:
        return await service.update_crew(tx, crew_id, data, actor, crew_load)
