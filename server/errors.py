"""Domain exceptions → RFC 9457 problem+json, in one mapping, in the caller's language.

Why not Litestar's ProblemDetailsPlugin: it renders one fixed ``detail`` string per exception,
and our messages are chosen per request from the Accept-Language header (docs/adr/0003).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    TooManyRequestsException,
    ValidationException,
)
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.openapi.datastructures import ResponseSpec
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from server.i18n import negotiate, translate

log = logging.getLogger("tournee.errors")

PROBLEM_JSON = "application/problem+json"


class DomainError(Exception):
    """A refusal the client can understand: stable ``code``, HTTP ``status``, message params."""

    def __init__(self, problem_code: str, status: int = 400, /, **params: Any) -> None:
        super().__init__(problem_code)
        self.code = problem_code
        self.status = status
        self.params = params
        self.extra: dict[str, Any] = {}  # top-level members of the problem body

    def with_members(self, **members: Any) -> DomainError:
        """Add top-level members to the problem body (e.g. ``last_mutation_id``)."""
        self.extra.update(members)
        return self


class NotFound(DomainError):
    def __init__(self, entity: str, entity_id: Any) -> None:
        super().__init__("entity_not_found", 404, entity=entity, id=entity_id)


class Forbidden(DomainError):
    def __init__(self, problem_code: str = "forbidden", /, **params: Any) -> None:
        super().__init__(problem_code, 403, **params)


class Unauthorized(DomainError):
    def __init__(self, problem_code: str = "not_authenticated", /, **params: Any) -> None:
        super().__init__(problem_code, 401, **params)


class Conflict(DomainError):
    def __init__(self, problem_code: str, /, **params: Any) -> None:
        super().__init__(problem_code, 409, **params)


class Invalid(DomainError):
    def __init__(self, problem_code: str, /, **params: Any) -> None:
        super().__init__(problem_code, 422, **params)


@dataclass
class Problem:
    """The RFC 9457 body every error response carries (``application/problem+json``)."""

    type: str  # urn:tournee:problem:<code>
    title: str  # in the language of Content-Language
    status: int
    code: str  # stable: clients switch on it (server/i18n.py lists every one)
    instance: str
    params: dict[str, Any] | None = None  # the message's parameters
    detail: str | None = None
    errors: list[dict[str, Any]] | None = None  # validation_failed: the fields refused
    last_mutation_id: int | None = None  # mutation_gap (sync push): resend from this + 1


PROBLEM_STATUSES = {
    400: "Bad request: malformed JSON, a value refused (validation_failed), a NUL character",
    401: "Not authenticated, or the token was revoked or expired",
    403: "Not allowed for this role or token",
    404: "Not found",
    409: "Conflict with the current state",
    413: "Body too large",
    422: "Refused by the domain rules",
    429: "Too many requests (Retry-After)",
    503: "Database busy (Retry-After)",
}


def problem_responses() -> dict[int, ResponseSpec]:
    """OpenAPI: what an error response of our routes actually is (docs/adr/0004)."""
    return {
        status: ResponseSpec(
            data_container=Problem,
            media_type=PROBLEM_JSON,
            description=description,
            generate_examples=False,
        )
        for status, description in PROBLEM_STATUSES.items()
    }


def problem(
    request: Request[Any, Any, Any],
    status: int,
    code: str,
    /,
    *,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    **params: Any,
) -> Response[dict[str, Any]]:
    language = negotiate(request.headers.get("accept-language"))
    body: dict[str, Any] = {
        "type": f"urn:tournee:problem:{code}",
        "title": translate(code, language, **params),
        "status": status,
        "code": code,
        "instance": request.url.path,
    }
    public_params = {k: v for k, v in params.items() if isinstance(v, str | int | float | bool)}
    if public_params:
        body["params"] = public_params
    if extra:
        body.update(extra)
    response_headers = {"Content-Language": language, **(headers or {})}
    return Response(
        content=body,
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=response_headers,
    )


def _domain_handler(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    return problem(request, exc.status, exc.code, extra=exc.extra or None, **exc.params)


def _validation_fields(exc: ValidationException) -> list[dict[str, Any]]:
    extra = exc.extra
    if isinstance(extra, list):
        return [e if isinstance(e, dict) else {"message": str(e)} for e in extra]
    if isinstance(extra, dict):
        return [extra]
    return []


def _http_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    headers = dict(exc.headers or {})
    if isinstance(exc, ValidationException) or (status == 400 and exc.extra):
        errors = _validation_fields(exc) if isinstance(exc, ValidationException) else []
        fields = ", ".join(sorted({str(e.get("key") or e.get("source") or "body") for e in errors}))
        return problem(
            request,
            400,
            "validation_failed",
            extra={"errors": errors, "detail": exc.detail},
            fields=fields or "body",
        )
    codes: dict[type[Exception], str] = {
        NotAuthorizedException: "not_authenticated",
        PermissionDeniedException: "forbidden",
        NotFoundException: "not_found",
        MethodNotAllowedException: "method_not_allowed",
        RequestEntityTooLarge: "body_too_large",
        TooManyRequestsException: "too_many_requests",
    }
    code = codes.get(type(exc))
    if code is None:
        code = {
            401: "not_authenticated",
            403: "forbidden",
            404: "not_found",
            405: "method_not_allowed",
            413: "body_too_large",
            429: "too_many_requests",
        }.get(status)
    if code is None:
        code = "bad_request" if status < 500 else "internal_error"
    return problem(request, status, code, extra={"detail": exc.detail}, headers=headers)


def _integrity_handler(request: Request[Any, Any, Any], exc: IntegrityError) -> Response[Any]:
    log.warning("integrity error on %s: %s", request.url.path, exc.orig)
    return problem(request, 409, "integrity_error")


def _data_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    # A value the database cannot hold (an integer beyond 64 bits, an invalid text encoding):
    # validation should have caught it, but it is the client's input either way.
    log.warning("data error on %s: %s", request.url.path, exc)
    return problem(request, 400, "bad_request")


def _sqlstate(exc: BaseException) -> str:
    for candidate in (
        getattr(exc, "orig", None),
        getattr(getattr(exc, "orig", None), "__cause__", None),
    ):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if code:
            return str(code)
    return ""


def _dbapi_handler(request: Request[Any, Any, Any], exc: DBAPIError) -> Response[Any]:
    state = _sqlstate(exc)
    if state.startswith("22"):  # SQL data exception: the input (e.g. a NUL character)
        return _data_handler(request, exc)
    if state in ("40001", "40P01", "57014", "55P03"):  # serialization, deadlock, timeout, lock
        return _operational_handler(request, exc)
    return _internal_handler(request, exc)


def _operational_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    # "database is locked", a pool timeout, a statement timeout: the client may retry.
    log.warning("database busy on %s: %s", request.url.path, exc)
    return problem(request, 503, "database_busy", headers={"Retry-After": "2"})


def _internal_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(request, 500, "internal_error")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    DomainError: _domain_handler,
    HTTPException: _http_handler,
    IntegrityError: _integrity_handler,
    OperationalError: _operational_handler,
    DataError: _data_handler,
    DBAPIError: _dbapi_handler,
    OverflowError: _data_handler,
    PoolTimeout: _operational_handler,
    Exception: _internal_handler,
}

__all__ = [
    "EXCEPTION_HANDLERS",
    "PROBLEM_JSON",
    "Conflict",
    "DomainError",
    "Forbidden",
    "Invalid",
    "MediaType",
    "NotFound",
    "Unauthorized",
    "problem",
]
