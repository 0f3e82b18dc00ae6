"""create_app(): controllers, dependencies, exception handlers, static PWA, lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, get
from litestar.config.compression import CompressionConfig
from litestar.datastructures import CacheControlHeader, State
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, OpenAPIRenderPlugin, SwaggerRenderPlugin
from litestar.routes import HTTPRoute
from litestar.static_files import create_static_files_router
from sqlalchemy import text
from sqlmodel import SQLModel

from server import models  # noqa: F401  (registers every table)
from server.accounts.auth import provide_actor, public_guard
from server.accounts.routes import AuthController, DeviceController, UserController
from server.city.routes import BoroughController
from server.crews.routes import CrewController
from server.db import Database, provide_tx
from server.errors import EXCEPTION_HANDLERS, problem_responses
from server.exports.routes import ExportController
from server.jsonbody import TourneeRequest
from server.live import bus as live
from server.live.routes import LiveController
from server.logs import RequestLogMiddleware, configure_structlog, logging_config
from server.metrics import MetricsController
from server.notify.routes import (
    NoticeController,
    PushKeyController,
    PushSubscriptionController,
)
from server.notify.service import load_vapid_keys
from server.open311.routes import (
    Open311AttributeController,
    Open311Controller,
    Open311KeyController,
    open311_aware,
)
from server.params import AppSettings, Tx
from server.photos.jobs import DerivativesNow
from server.photos.routes import PhotoController, PublicPhotoController, WorkOrderPhotoController
from server.photos.service import make_photo_store
from server.photos.store import PhotoStore
from server.requests.routes import (
    CitizenController,
    ServiceRequestController,
    ServiceTypeController,
)
from server.scheduler import build_scheduler
from server.security_headers import add_security_headers
from server.settings import Settings, check_settings, get_settings
from server.shutdown import on_stop_signal
from server.syncapi.routes import SyncController, SyncDeskController
from server.tracking.routes import TrackingController
from server.wiring import wire
from server.workorders.queries import open_counts
from server.workorders.routes import CrewWorkController, WorkOrderController


class Health(SQLModel):
    status: str
    database: str


@get("/healthz", operation_id="health", tags=["ops"], guards=[public_guard])
async def healthz(tx: Tx, settings: AppSettings) -> Health:
    await tx.execute(text("SELECT 1"))
    return Health(status="ok", database=settings.database_kind)


ROUTE_HANDLERS: list[Any] = [
    healthz,
    AuthController,
    UserController,
    DeviceController,
    CrewController,
    BoroughController,
    ServiceTypeController,
    ServiceRequestController,
    CitizenController,
    TrackingController,
    WorkOrderController,
    CrewWorkController,
    ExportController,
    SyncController,
    SyncDeskController,
    LiveController,
    PushKeyController,
    PushSubscriptionController,
    NoticeController,
    PhotoController,
    WorkOrderPhotoController,
    PublicPhotoController,
    Open311Controller,
    Open311KeyController,
    Open311AttributeController,
    MetricsController,
]


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    check_settings(settings)  # ConfigError: refuse to start (`tournee` prints it in one line)
    wire()  # who listens to what after a change (server/wiring.py)
    log_config = logging_config(settings)
    configure_structlog()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        db = Database(settings)
        app.state.db = db
        app.state.settings = settings  # for guards (server/ratelimit.py)
        live.install(db, channels_plugin, settings)  # live events leave after commit
        app.state.channels = channels_plugin
        app.state.vapid = load_vapid_keys(settings)
        app.state.photo_copies = photo_copies  # public copies as uploads complete
        scheduler = None
        if settings.scheduler_enabled:
            scheduler = build_scheduler(db, settings, app.state.vapid)
            scheduler.start()

        def begin_shutdown() -> None:  # SIGTERM/SIGINT: before uvicorn drains the requests
            live.close_streams(channels_plugin)
            if scheduler is not None:
                scheduler.stopping.set()  # no new push claims

        uninstall = on_stop_signal(begin_shutdown)
        try:
            yield
        finally:
            uninstall()
            live.close_streams(channels_plugin)
            if scheduler is not None:
                await scheduler.stop()
            await photo_copies.drain(timeout=settings.shutdown_grace_seconds)
            await db.dispose()

    def provide_db(state: State) -> Database:
        db: Database = state.db
        return db

    def provide_settings() -> Settings:
        return settings

    photo_store = make_photo_store(settings)
    photo_copies = DerivativesNow(settings.photo_copy_workers)

    def provide_photo_store() -> PhotoStore:
        return photo_store

    channels_plugin = live.make_plugin(settings)
    handlers = list(ROUTE_HANDLERS)
    if settings.pwa_dir.is_dir():
        handlers.append(
            create_static_files_router(
                path="/",
                directories=[settings.pwa_dir],
                html_mode=True,
                include_in_schema=False,
                guards=[public_guard],
                name="pwa",
                # Revalidate every shell file (sw.js above all: a stale worker pins an old app);
                # offline, the service worker's versioned cache serves them.
                cache_control=CacheControlHeader(no_cache=True),
            )
        )

    # /schema/openapi.json always; the Swagger page (CDN scripts) only when enabled
    schema_pages: list[OpenAPIRenderPlugin] = [JsonRenderPlugin()]
    if settings.schema_ui:
        schema_pages.append(SwaggerRenderPlugin())

    app = Litestar(
        logging_config=log_config,  # structlog renders every line (server/logs.py)
        route_handlers=handlers,
        before_send=[add_security_headers],
        dependencies={
            "db": Provide(provide_db, sync_to_thread=False),
            "settings": Provide(provide_settings, sync_to_thread=False),
            "tx": Provide(provide_tx),
            "actor": Provide(provide_actor),
            "photo_store": Provide(provide_photo_store, sync_to_thread=False),
            # crews show their open load; work orders (above crews) answer it
            "crew_load": Provide(lambda: open_counts, sync_to_thread=False),
        },
        exception_handlers={
            **EXCEPTION_HANDLERS,
            # the router's own 404/405 under /open311/ in the Open311 error format
            HTTPException: open311_aware(EXCEPTION_HANDLERS[HTTPException]),
        },
        lifespan=[lifespan],
        plugins=[channels_plugin],
        request_max_body_size=settings.max_body_bytes,
        request_class=TourneeRequest,  # JSON bodies decoded strictly, in one place
        compression_config=CompressionConfig(backend="gzip", minimum_size=1024),
        openapi_config=OpenAPIConfig(
            title="Tournée",
            version="0.1.0",
            description="311 requests to field crews: dispatch, offline sync, photo evidence.",
            path="/schema",
            render_plugins=schema_pages,
        ),
        debug=False,
    )
    # outermost, as Litestar wraps its own CORS middleware: unmatched paths get a line too
    app.asgi_handler = RequestLogMiddleware(app.asgi_handler)
    _document_problems(app)
    return app


def _document_problems(app: Litestar) -> None:
    """Every error response in the OpenAPI schema is the problem+json we send (Litestar's
    default 400 describes its own ``{status_code, detail, extra}`` body). Open311 routes keep
    their own error format (docs/open311.md)."""
    problems = problem_responses()
    for route in app.routes:
        if route.path.startswith("/open311") or not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if handler.include_in_schema:
                handler.responses = {**problems, **(handler.responses or {})}
