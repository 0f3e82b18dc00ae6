"""Sign-in, users (admin) and crew devices (dispatchers)."""

from __future__ import annotations

from litestar import Controller, get, patch, post
from litestar.params import FromQuery, JSONBody

from server.accounts import service
from server.accounts.auth import (
    CurrentActor,
    admin_guard,
    any_user_guard,
    dispatcher_guard,
    public_guard,
)
from server.accounts.models import (
    DevicePublic,
    LoginRequest,
    LoginResponse,
    StreamTicketPublic,
    UserCreate,
    UserPublic,
    UserUpdate,
)
from server.params import AppSettings, DbId, QueryDbId, Tx
from server.ratelimit import Rule, by_address, by_json_field, rate_limit_guard


class AuthController(Controller):
    path = "/api/v1/auth"
    tags = ["auth"]

    @post(
        "/login",
        operation_id="login",
        status_code=200,
        guards=[
            public_guard,
            rate_limit_guard(
                Rule("login", lambda s: s.rate_limit_login, by_address),
                Rule(
                    "login-account",
                    lambda s: s.rate_limit_login_account,
                    by_json_field("username", fold_case=True),
                ),
            ),
        ],
    )
    async def login(
        self, tx: Tx, settings: AppSettings, data: JSONBody[LoginRequest]
    ) -> LoginResponse:
        """Dispatchers get a session token; crew members get a revocable device token."""
        return await service.login(tx, data, settings)

    @post("/logout", operation_id="logout", status_code=204, guards=[any_user_guard])
    async def logout(self, tx: Tx, actor: CurrentActor) -> None:
        await service.logout(tx, actor)

    @post(
        "/stream-ticket",
        operation_id="createStreamTicket",
        status_code=201,
        guards=[any_user_guard],
        summary="A single-use ticket for ?ticket= on an SSE route (EventSource sends no headers)",
    )
    async def stream_ticket(
        self, tx: Tx, settings: AppSettings, actor: CurrentActor
    ) -> StreamTicketPublic:
        return await service.stream_ticket(tx, actor, settings)

    @get("/me", operation_id="whoAmI", guards=[any_user_guard])
    async def me(self, tx: Tx, actor: CurrentActor) -> UserPublic:
        user = await service.current_user(tx, actor)
        return UserPublic.model_validate(user.model_dump())


class UserController(Controller):
    path = "/api/v1/users"
    guards = [admin_guard]
    tags = ["users"]

    @get("/", operation_id="listUsers")
    async def list_users(self, tx: Tx) -> list[UserPublic]:
        rows = await service.list_users(tx)
        return [UserPublic.model_validate(u.model_dump()) for u in rows]

    @post("/", operation_id="createUser")
    async def create_user(
        self, tx: Tx, actor: CurrentActor, data: JSONBody[UserCreate]
    ) -> UserPublic:
        user = await service.create_user(tx, data, actor)
        return UserPublic.model_validate(user.model_dump())

    @patch("/{user_id:int}", operation_id="updateUser")
    async def update_user(
        self, tx: Tx, actor: CurrentActor, user_id: DbId, data: JSONBody[UserUpdate]
    ) -> UserPublic:
        user = await service.update_user(tx, user_id, data, actor)
        return UserPublic.model_validate(user.model_dump())


class DeviceController(Controller):
    path = "/api/v1/devices"
    guards = [dispatcher_guard]
    tags = ["devices"]

    @get("/", operation_id="listDevices")
    async def list_devices(
        self, tx: Tx, crew_id: QueryDbId = None, include_revoked: FromQuery[bool] = False
    ) -> list[DevicePublic]:
        return await service.list_devices(tx, crew_id, include_revoked)

    @post("/{device_id:int}/revoke", operation_id="revokeDevice", status_code=200)
    async def revoke(self, tx: Tx, actor: CurrentActor, device_id: DbId) -> DevicePublic:
        """A lost phone: its next request is refused with 401 token_revoked."""
        return await service.revoke_device(tx, device_id, actor)
