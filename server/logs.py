"""Logs: one structured line per event (JSON or console), a request id on every line, no secrets.

structlog renders every record — ours, uvicorn's, Litestar's, the libraries' — through one
``ProcessorFormatter`` installed with Litestar's ``LoggingConfig`` (a ``logging.config``
dictionary), so the same redaction runs on every line whoever wrote it. uvicorn's access log is
off: :class:`RequestLogMiddleware` writes one line per request instead, with the request id,
status and duration, and the path with its secrets masked.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import MutableMapping
from typing import IO, Any

import structlog
from litestar.enums import ScopeType
from litestar.logging.config import LoggingConfig
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from server.metrics import observe_request
from server.settings import Settings

MASK = "[redacted]"

# ?access_token=…, &api_key=…, ?ticket=…, password=… in a query string or a form body
_SECRET_PARAMS = re.compile(
    r"(?i)(\b(?:access_token|api_key|apikey|ticket|token|password|secret|auth|key)=)[^&\s\"'<>]*"
)
_BEARER = re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]+")
# citizens' tracking tokens and push endpoints live in URL paths
_SECRET_PATHS = re.compile(
    r"(/api/v1/public/requests/|/open311/v2/tokens/|#/suivi/|/fcm/send/|/wpush/v\d/|/push/v\d/)"
    r"(?!push-subscription)[^/?#\s\"'<>.]+"
)
_SECRET_KEYS = {"password", "token", "access_token", "api_key", "ticket", "authorization"}


def redact(text: str) -> str:
    """Mask every secret this service knows how to recognise in a piece of text."""
    text = _SECRET_PARAMS.sub(rf"\g<1>{MASK}", text)
    text = _BEARER.sub(rf"\g<1>{MASK}", text)
    return _SECRET_PATHS.sub(rf"\g<1>{MASK}", text)


def redact_event(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: masks secrets in every string of the event, by key and by shape."""
    event.pop("color_message", None)  # uvicorn's ANSI copy of the message
    for key, value in list(event.items()):
        if key in _SECRET_KEYS and value:
            event[key] = MASK
        elif isinstance(value, str):
            event[key] = redact(value)
    return event


def _level_of(settings: Settings) -> str:
    return "DEBUG" if settings.debug else "INFO"


def logging_config(settings: Settings, stream: IO[str] | None = None) -> LoggingConfig:
    """Litestar's logging configuration, with structlog formatting every record."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    json = settings.log_format == "json"
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    handler: dict[str, Any] = {"class": "logging.StreamHandler", "formatter": "structured"}
    if stream is not None:
        handler["stream"] = stream
    level = _level_of(settings)
    quiet = "WARNING" if level == "INFO" else level
    return LoggingConfig(
        formatters={
            "structured": {
                "()": structlog.stdlib.ProcessorFormatter,
                "foreign_pre_chain": [*shared, structlog.stdlib.ExtraAdder()],
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    redact_event,
                    renderer,
                ],
            }
        },
        handlers={"structured": handler},
        root={"level": level, "handlers": ["structured"]},
        loggers={
            "litestar": {"level": level, "handlers": [], "propagate": True},
            "uvicorn": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.error": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
            "apscheduler": {"level": quiet, "handlers": [], "propagate": True},
            "httpx": {"level": quiet, "handlers": [], "propagate": True},
            "aiosqlite": {"level": "INFO", "handlers": [], "propagate": True},
            "asyncio": {"level": "WARNING", "handlers": [], "propagate": True},
        },
        # server/errors.py logs what it turns into a 5xx (once, through these handlers)
        log_exceptions="never",
        disable_existing_loggers=False,
    )


def configure_structlog() -> None:
    """structlog's own loggers hand their events to the standard library's handlers."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def configure_logging(settings: Settings, stream: IO[str] | None = None) -> LoggingConfig:
    """Install the configuration (processes without a Litestar app: CLI, scheduler)."""
    config = logging_config(settings, stream)
    configure_structlog()
    config.configure()
    return config


_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
access_log = logging.getLogger("tournee.access")


class RequestLogMiddleware:
    """Pure ASGI: a request id on every line logged while a request runs (taken from a sane
    ``X-Request-ID`` or made here, and sent back), and one line per request when it ends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        given = ""
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                given = value.decode("latin-1")
                break
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex[:16]
        started = time.perf_counter()
        status = 500
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        query = scope.get("query_string", b"").decode("latin-1")
        path = scope.get("path", "") + (f"?{query}" if query else "")
        client = scope.get("client")
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                observe_request(scope, status, time.perf_counter() - started)
                access_log.info(
                    "request",
                    extra={
                        "method": scope.get("method"),
                        "path": redact(path),
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                        "client": client[0] if client else None,
                    },
                )
