"""Sign-in, users and crew devices."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.accounts.auth import (
    Actor,
    hash_password,
    issue_stream_ticket,
    new_token,
    verify_password,
)
from server.accounts.events import SessionsEnded
from server.accounts.models import (
    AccessToken,
    DevicePublic,
    LoginRequest,
    LoginResponse,
    StreamTicketPublic,
    User,
    UserCreate,
    UserPublic,
    UserUpdate,
)
from server.audit import diff, record
from server.dbtypes import references_existing_row, utcnow
from server.errors import Conflict, Invalid, NotFound, Unauthorized
from server.events import emit
from server.settings import Settings


async def login(tx: AsyncSession, data: LoginRequest, settings: Settings) -> LoginResponse:
    user = (
        await tx.execute(select(User).where(col(User.username) == data.username.strip().lower()))
    ).scalar_one_or_none()
    if not verify_password(user.password_hash if user else None, data.password) or user is None:
        raise Unauthorized("invalid_credentials")
    if not user.active:
        raise Unauthorized("invalid_credentials")
    assert user.id is not None
    token, digest = new_token()
    now = utcnow()
    if user.role == "crew":
        if user.crew_id is None:
            raise Invalid("user_without_crew")
        access = AccessToken(
            token_hash=digest,
            kind="device",
            user_id=user.id,
            crew_id=user.crew_id,
            label=(data.device_label or f"{user.username}").strip()[:120],
            last_seen_at=now,
        )
    else:
        access = AccessToken(
            token_hash=digest,
            kind="session",
            user_id=user.id,
            label=(data.device_label or "").strip()[:120],
            expires_at=now + timedelta(hours=settings.session_hours),
            last_seen_at=now,
        )
    tx.add(access)
    await tx.flush()
    assert access.id is not None
    if access.kind == "device":
        await record(
            tx,
            entity_type="device",
            entity_id=access.id,
            action="enrolled",
            actor=Actor(
                user.id, user.username, user.role, user.crew_id, access.id, "device", user.language
            ),
            changes={"label": [None, access.label], "crew_id": [None, access.crew_id]},
        )
    return LoginResponse(
        token=token,
        kind=access.kind,
        expires_at=access.expires_at,
        user=UserPublic.model_validate(user.model_dump()),
        device_id=access.id if access.kind == "device" else None,
    )


async def stream_ticket(tx: AsyncSession, actor: Actor, settings: Settings) -> StreamTicketPublic:
    ticket, expires_at = await issue_stream_ticket(
        tx, actor, timedelta(seconds=settings.stream_ticket_seconds)
    )
    return StreamTicketPublic(ticket=ticket, expires_at=expires_at)


async def logout(tx: AsyncSession, actor: Actor) -> None:
    access = await tx.get(AccessToken, actor.token_id)
    if access is not None and access.revoked_at is None:
        access.revoked_at = utcnow()
        access.revoked_by_id = actor.user_id
        tx.add(access)
        await tx.flush()
        await emit(SessionsEnded(tx, access.user_id, access.id))


async def _check_crew(tx: AsyncSession, crew_id: int | None) -> None:
    # The crew table belongs to the crews domain (above this one): ask the database through the
    # foreign key the user table declares, not through the crews package.
    if crew_id is not None and not await references_existing_row(tx, User, "crew_id", crew_id):
        raise NotFound("crew", crew_id)


async def current_user(tx: AsyncSession, actor: Actor) -> User:
    user = await tx.get(User, actor.user_id)
    assert user is not None
    return user


async def list_users(tx: AsyncSession) -> list[User]:
    return list((await tx.execute(select(User).order_by(User.username))).scalars())


async def create_user(tx: AsyncSession, data: UserCreate, actor: Actor) -> User:
    username = data.username.lower()
    exists = (await tx.execute(select(col(User.id)).where(col(User.username) == username))).first()
    if exists:
        raise Conflict("duplicate_username", username=username)
    if data.role == "crew" and data.crew_id is None:
        raise Invalid("user_without_crew")
    await _check_crew(tx, data.crew_id)
    user = User(
        username=username,
        display_name=data.display_name,
        role=data.role,
        crew_id=data.crew_id,
        language=data.language,
        password_hash=hash_password(data.password),
    )
    tx.add(user)
    await tx.flush()
    assert user.id is not None
    await record(
        tx,
        entity_type="user",
        entity_id=user.id,
        action="created",
        actor=actor,
        changes={"username": [None, username], "role": [None, data.role]},
    )
    return user


async def update_user(tx: AsyncSession, user_id: int, data: UserUpdate, actor: Actor) -> User:
    user = await tx.get(User, user_id)
    if user is None:
        raise NotFound("user", user_id)
    fields = ("display_name", "role", "crew_id", "language", "active")
    before = {f: getattr(user, f) for f in fields}
    patch = data.model_dump(exclude_unset=True)
    if "crew_id" in patch:
        await _check_crew(tx, patch["crew_id"])
    for name in fields:
        if name in patch and (patch[name] is not None or name == "crew_id"):
            setattr(user, name, patch[name])
    if user.role == "crew" and user.crew_id is None:
        raise Invalid("user_without_crew")
    changes = diff(before, {f: getattr(user, f) for f in fields})
    if patch.get("password"):
        user.password_hash = hash_password(patch["password"])
        changes["password"] = ["***", "***"]
    tx.add(user)
    await tx.flush()
    if {"active", "role", "crew_id"} & changes.keys():
        await emit(SessionsEnded(tx, user_id))  # open streams were opened for what the user was
    await record(
        tx, entity_type="user", entity_id=user_id, action="updated", actor=actor, changes=changes
    )
    return user


async def list_devices(
    tx: AsyncSession, crew_id: int | None, include_revoked: bool
) -> list[DevicePublic]:
    query = (
        select(AccessToken, col(User.username))
        .join(User, col(User.id) == col(AccessToken.user_id))
        .where(col(AccessToken.kind) == "device")
    )
    if crew_id is not None:
        query = query.where(col(AccessToken.crew_id) == crew_id)
    if not include_revoked:
        query = query.where(col(AccessToken.revoked_at).is_(None))
    rows = await tx.execute(query.order_by(col(AccessToken.id)))
    return [_device_public(access, username) for access, username in rows.all()]


def _device_public(access: AccessToken, username: str) -> DevicePublic:
    return DevicePublic(
        id=access.id or 0,
        crew_id=access.crew_id,
        user_id=access.user_id,
        username=username,
        label=access.label,
        created_at=access.created_at,
        last_seen_at=access.last_seen_at,
        revoked_at=access.revoked_at,
        active=access.revoked_at is None,
    )


async def revoke_device(tx: AsyncSession, device_id: int, actor: Actor) -> DevicePublic:
    access = (
        await tx.execute(
            select(AccessToken).where(
                col(AccessToken.id) == device_id, col(AccessToken.kind) == "device"
            )
        )
    ).scalar_one_or_none()
    if access is None:
        raise NotFound("device", device_id)
    if access.revoked_at is None:
        access.revoked_at = utcnow()
        access.revoked_by_id = actor.user_id
        tx.add(access)
        await tx.flush()
        await emit(SessionsEnded(tx, access.user_id, access.id))
        await record(
            tx,
            entity_type="device",
            entity_id=device_id,
            action="revoked",
            actor=actor,
            changes={"revoked_at": [None, access.revoked_at.isoformat()]},
        )
    user = await tx.get(User, access.user_id)
    return _device_public(access, user.username if user else "")
