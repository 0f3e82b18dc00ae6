"""Crews and boroughs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from litestar.di import NamedDependency
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.accounts.auth import Actor
from server.accounts.models import User
from server.audit import diff, record
from server.city.service import check_borough
from server.crews.models import Crew, CrewCreate, CrewMemberPublic, CrewPublic, CrewUpdate
from server.errors import Conflict, NotFound

CrewLoad = Callable[[AsyncSession, Sequence[int]], Awaitable[dict[int, int]]]
"""Open work orders per crew id. Work orders are the dispatch domain's (above this one): the app
passes its query in (``crew_load`` dependency, server/app.py), crews never import it."""

CrewLoadDep = NamedDependency[CrewLoad]


async def list_crews(
    tx: AsyncSession, load: CrewLoad, borough: str | None = None, kind: str | None = None
) -> list[CrewPublic]:
    query = select(Crew)
    if borough:
        query = query.where(col(Crew.borough_code) == borough)
    if kind:
        query = query.where(col(Crew.kind) == kind)
    crews = list((await tx.execute(query.order_by(col(Crew.name)))).scalars())
    return await to_public(tx, crews, load)


async def to_public(tx: AsyncSession, crews: list[Crew], load: CrewLoad) -> list[CrewPublic]:
    ids = [c.id for c in crews if c.id is not None]
    members: dict[int, list[CrewMemberPublic]] = {i: [] for i in ids}
    if ids:
        users = (
            await tx.execute(
                select(User)
                .where(col(User.crew_id).in_(ids), col(User.active))
                .order_by(col(User.username))
            )
        ).scalars()
        for user in users:
            members[user.crew_id or 0].append(
                CrewMemberPublic(
                    id=user.id or 0, username=user.username, display_name=user.display_name
                )
            )
        counts = await load(tx, ids)
    else:
        counts = {}
    return [
        CrewPublic(
            **crew.model_dump(include={"id", "code", "name", "borough_code", "kind", "active"}),
            members=members.get(crew.id or 0, []),
            open_work_orders=int(counts.get(crew.id or 0, 0)),
        )
        for crew in crews
    ]


async def get_crew(tx: AsyncSession, crew_id: int, load: CrewLoad) -> CrewPublic:
    (public,) = await to_public(tx, [await _load(tx, crew_id)], load)
    return public


async def _load(tx: AsyncSession, crew_id: int) -> Crew:
    crew = await tx.get(Crew, crew_id)
    if crew is None:
        raise NotFound("crew", crew_id)
    return crew


async def create_crew(
    tx: AsyncSession, data: CrewCreate, actor: Actor, load: CrewLoad
) -> CrewPublic:
    await check_borough(tx, data.borough_code)
    if (await tx.execute(select(col(Crew.id)).where(col(Crew.code) == data.code))).first():
        raise Conflict("duplicate_code", code=data.code)
    crew = Crew.model_validate(data.model_dump())
    tx.add(crew)
    await tx.flush()
    assert crew.id is not None
    await record(
        tx,
        entity_type="crew",
        entity_id=crew.id,
        action="created",
        actor=actor,
        changes=diff({}, data.model_dump()),
    )
    (public,) = await to_public(tx, [crew], load)
    return public


async def update_crew(
    tx: AsyncSession, crew_id: int, data: CrewUpdate, actor: Actor, load: CrewLoad
) -> CrewPublic:
    crew = await _load(tx, crew_id)
    patch = data.model_dump(exclude_unset=True, exclude_none=True)
    if "borough_code" in patch:
        await check_borough(tx, patch["borough_code"])
    before = crew.model_dump()
    for key, value in patch.items():
        setattr(crew, key, value)
    tx.add(crew)
    await tx.flush()
    await record(
        tx,
        entity_type="crew",
        entity_id=crew_id,
        action="updated",
        actor=actor,
        changes=diff(before, crew.model_dump()),
    )
    (public,) = await to_public(tx, [crew], load)
    return public
