"""Seed the Québec City demo (reference data, users, a few hundred requests and work orders)."""

from __future__ import annotations

import random
import secrets
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server import demo_data
from server.accounts.auth import hash_password
from server.accounts.models import User
from server.audit import AuditEvent
from server.city.models import Borough
from server.city.service import BoroughLimits
from server.city_import import CityData, ServiceTypeFile, apply
from server.crews.models import Crew, CrewCreate
from server.db import Database
from server.dbtypes import utcnow
from server.open311.catalogue import DEMO_ATTRIBUTES
from server.open311.models import AttributeDefinition
from server.requests.models import ServiceRequest, ServiceType
from server.settings import ConfigError, Settings
from server.wiring import wire
from server.workorders.models import WorkOrder

# Demo-only passwords, printed at start-up. Never use the demo data in production.
DEMO_PASSWORDS = {"admin": "admin-demo", "dispatcher": "repartition-demo", "crew": "equipe-demo"}


def demo_city() -> CityData:
    """The Québec City demo as city files would give it (server/city_import.py)."""
    return CityData(
        boroughs=[BoroughLimits(b.code, b.name, b.geometry()) for b in demo_data.BOROUGHS],
        service_types=[
            ServiceTypeFile(
                code=st.code,
                name_fr=st.name_fr,
                name_en=st.name_en,
                description_fr=st.description_fr,
                description_en=st.description_en,
                category=st.category,
                default_priority=st.default_priority,
                sla_hours=st.sla_hours,
                evidence_required=list(st.evidence_required),
                crew_kind=st.crew_kind,
                # Open311 service definitions (typed questions per service)
                open311_attributes=[
                    AttributeDefinition.model_validate(a) for a in DEMO_ATTRIBUTES.get(st.code, [])
                ],
            )
            for st in demo_data.SERVICE_TYPES
        ],
        crews=[
            CrewCreate(code=c.code, name=c.name, borough_code=c.borough_code, kind=c.kind)
            for c in demo_data.CREWS
        ],
    )


async def seed_reference(tx: AsyncSession) -> dict[str, int]:
    """Boroughs, service types and crews. Returns crew ids by code."""
    await apply(tx, demo_city())
    rows = (await tx.execute(select(col(Crew.code), col(Crew.id)))).all()
    return {str(code): int(crew_id) for code, crew_id in rows if crew_id is not None}


def demo_users() -> list[tuple[str, str, str, str | None]]:
    """(username, display name, role, crew code) of every demo user."""
    users: list[tuple[str, str, str, str | None]] = []
    for admin in demo_data.ADMINS:
        users.append((admin.username, admin.display_name, "admin", None))
    for dispatcher in demo_data.DISPATCHERS:
        users.append((dispatcher.username, dispatcher.display_name, "dispatcher", None))
    for crew in demo_data.CREWS:
        for member in crew.members:
            users.append((member.username, member.display_name, "crew", crew.code))
    return users


async def seed_users(
    tx: AsyncSession, crews: dict[str, int], hashes: dict[str, str] | None = None
) -> None:
    hashes = hashes or {role: hash_password(pw) for role, pw in DEMO_PASSWORDS.items()}
    for username, display_name, role, crew_code in demo_users():
        tx.add(
            User(
                username=username,
                display_name=display_name,
                role=role,
                crew_id=crews[crew_code] if crew_code else None,
                password_hash=hashes[role],
            )
        )
    await tx.flush()


async def seed_requests(tx: AsyncSession, crews: dict[str, int], n: int, seed: int) -> None:
    """Requests from the generator; most get work orders in realistic states."""
    wire()  # the demo goes through the services: sync feed, notifications (server/wiring.py)
    now = utcnow()
    rng = random.Random(seed)
    types = {st.code: st for st in (await tx.execute(select(ServiceType))).scalars()}
    crews_by_key: dict[tuple[str, str], list[int]] = {}
    for crew in demo_data.CREWS:
        crews_by_key.setdefault((crew.borough_code, crew.kind), []).append(crews[crew.code])
    for demo in demo_data.generate_requests(seed, n, now):
        st = types[demo.service_code]
        request = ServiceRequest(
            service_type_id=st.id or 0,
            description=demo.description,
            lat=demo.lat,
            lon=demo.lon,
            address=demo.address,
            borough_code=demo.borough_code,
            reporter_name=demo.reporter_name,
            reporter_phone=demo.reporter_phone,
            reporter_email=demo.reporter_email,
            language=demo.language,
            channel=demo.channel,
            tracking_token=secrets.token_urlsafe(24),  # a real secret, even in the demo
            created_at=demo.created_at,
            updated_at=demo.created_at,
        )
        tx.add(request)
        # About a third stay in the dispatch queue; the rest have work orders in motion.
        roll = rng.random()
        if roll < 0.35:
            continue
        wo = WorkOrder(
            service_type_id=st.id or 0,
            title=st.name_fr,
            description=demo.description,
            lat=demo.lat,
            lon=demo.lon,
            address=demo.address,
            borough_code=demo.borough_code,
            priority=st.default_priority,
            due_at=demo.created_at + timedelta(hours=st.sla_hours),
            created_at=demo.created_at,
            updated_at=demo.created_at,
        )
        candidates = crews_by_key.get((demo.borough_code, st.crew_kind or ""), [])
        if roll >= 0.45 and candidates:
            wo.crew_id = rng.choice(candidates)
            wo.assigned_at = demo.created_at + timedelta(minutes=rng.randint(5, 90))
            wo.status = rng.choices(
                ["assigned", "en_route", "on_site", "on_hold", "completed"],
                weights=[50, 10, 8, 4, 12],
            )[0]
            if wo.status == "completed":
                wo.outcome = rng.choices(
                    ["fixed", "no_condition_found", "not_city_responsibility"], weights=[85, 10, 5]
                )[0]
                wo.completed_at = min(now, wo.assigned_at + timedelta(hours=rng.randint(1, 20)))
        tx.add(wo)
        await tx.flush()
        assert wo.id is not None
        tx.add(
            AuditEvent(
                entity_type="work_order",
                entity_id=wo.id,
                action="seeded",
                actor_role="system",
                at=wo.created_at,
                changes={"status": [None, wo.status], "crew_id": [None, wo.crew_id]},
                reason="demo data",
            )
        )
        request.work_order_id = wo.id
        request.status = (
            "closed" if wo.status == "completed" else ("scheduled" if wo.crew_id else "received")
        )
        if request.status == "closed":
            request.closed_at = wo.completed_at
    await tx.flush()


async def seed_demo(settings: Settings, *, requests: int = 300, seed: int = 311) -> bool:
    """Seed an empty database. Returns False (and changes nothing) when data exists."""
    db = Database(settings)
    try:
        async with db.transaction() as tx:
            if (await tx.execute(select(func.count()).select_from(Borough))).scalar_one():
                return False
            crews = await seed_reference(tx)
            await seed_users(tx, crews)
            await seed_requests(tx, crews, requests, seed)
        return True
    finally:
        await db.dispose()


async def has_admin(settings: Settings) -> bool:
    """Whether anyone can sign in to the dispatch console as an admin yet."""
    db = Database(settings)
    try:
        async with db.transaction() as tx:
            found = await tx.execute(select(col(User.id)).where(col(User.role) == "admin").limit(1))
            return found.first() is not None
    finally:
        await db.dispose()


FIRST_ADMIN_HINT = (
    "No admin yet: create the first one with "
    "`tournee create-user <name> --role admin` (or run `tournee demo` for the demo city)."
)


def print_logins() -> None:
    print("\nDemo logins / Identifiants de démonstration:")
    shown_crews = 0
    for username, display_name, role, crew_code in demo_users():
        if role == "crew":
            shown_crews += 1
            if shown_crews > 3:
                continue
        label = f"{role}{' (' + crew_code + ')' if crew_code else ''}"
        print(f"  {label:<38} {username:<16} {DEMO_PASSWORDS[role]}  ({display_name})")
    print(f"  … and every crew member (password {DEMO_PASSWORDS['crew']}); see the crews list.\n")


async def create_user_cli(
    settings: Settings,
    *,
    username: str,
    display_name: str,
    role: str,
    crew_code: str | None,
    password: str,
) -> None:
    """Refuses (ConfigError, one line) an unknown crew or a username already taken."""
    db = Database(settings)
    try:
        async with db.transaction() as tx:
            crew_id = None
            if crew_code:
                crew = (
                    await tx.execute(select(Crew).where(col(Crew.code) == crew_code))
                ).scalar_one_or_none()
                if crew is None:
                    raise ConfigError(f"no crew has the code {crew_code!r}")
                crew_id = crew.id
            taken = (
                await tx.execute(select(col(User.id)).where(col(User.username) == username.lower()))
            ).first()
            if taken is not None:
                raise ConfigError(f"the username {username.lower()!r} is already taken")
            tx.add(
                User(
                    username=username.lower(),
                    display_name=display_name,
                    role=role,
                    crew_id=crew_id,
                    password_hash=hash_password(password),
                )
            )
    finally:
        await db.dispose()
