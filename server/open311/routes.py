"""Open311 GeoReport v2 routes (``/open311/v2/…{.xml,.json}``) and their admin endpoints.

Every Open311 route renders its errors in the spec's format (``<errors>`` or the JSON array),
never problem+json: the controller overrides each app-level exception handler, and
:func:`open311_aware` does the same for the router's own 404/405 under ``/open311/``.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Controller, Request, Response, get, post, put
from litestar.datastructures import UploadFile
from litestar.exceptions import HTTPException, ValidationException
from litestar.params import FromPath, JSONBody

from server.accounts.auth import CurrentActor, admin_guard, public_guard
from server.errors import EXCEPTION_HANDLERS, DomainError, Invalid
from server.i18n import DEFAULT_LANGUAGE, LANGUAGES, negotiate, translate
from server.open311 import definitions, documents, intake, queries, service
from server.open311.models import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    AttributeDefinition,
)
from server.open311.render import Format, errors_document, media_type, render
from server.params import AppSettings, DbId, Tx
from server.ratelimit import Rule, by_form_field, rate_limit_guard

log = logging.getLogger("tournee.open311")

#: multipart bodies carry photos: larger than the JSON API's limit
MAX_POST_BYTES = 20_000_000
MAX_PHOTOS = 5

_HTTP_CODES = {
    400: "bad_request",
    401: "open311_api_key_required",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    429: "too_many_requests",
}
# Open311 clients know 400, 403, 404 (and 5xx): fold the API's finer statuses into them.
_STATUS_MAP = {401: 403, 409: 400, 415: 400, 422: 400}


def format_of(path: str) -> Format:
    return "json" if path.lower().endswith(".json") else "xml"


def language_of(request: Request[Any, Any, Any]) -> str:
    locale = request.query_params.get("locale")
    if isinstance(locale, str) and locale:
        primary = locale.replace("_", "-").split("-")[0].lower()
        if primary in LANGUAGES:
            return primary
    return negotiate(request.headers.get("accept-language"))


def _split(value: str) -> tuple[str, Format]:
    """``"123.json"`` → ``("123", "json")``; no or another suffix → 404."""
    stem, dot, suffix = value.rpartition(".")
    if not dot or suffix.lower() not in ("xml", "json") or not stem:
        raise service.Open311NotFound("not_found")
    return stem, "json" if suffix.lower() == "json" else "xml"


#: Open311 data is meant to be read from other sites: public reads (and their errors) carry
#: this header. POST is left out: it carries an API key and belongs on a server, not a page.
CORS_HEADERS = {"Access-Control-Allow-Origin": "*", "Vary": "Accept-Language"}


def _document(
    fmt: Format,
    root: str,
    content: dict[str, Any] | list[Any],
    item_tag: str | None = None,
    status: int = 200,
    lang: str = DEFAULT_LANGUAGE,
    public: bool = True,
) -> Response[bytes]:
    headers = {"Content-Language": lang, **(CORS_HEADERS if public else {})}
    return Response(
        content=render(fmt, root, content, item_tag),
        status_code=status,
        media_type=media_type(fmt),
        headers=headers,
    )


def _default_handler(exc: Exception) -> Any:
    for cls in type(exc).__mro__:
        if cls in EXCEPTION_HANDLERS:
            return EXCEPTION_HANDLERS[cls]
    return EXCEPTION_HANDLERS[Exception]


def open311_exception_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    lang = language_of(request)
    params: dict[str, Any] = {}
    headers: dict[str, str] = {"Content-Language": lang}
    if isinstance(exc, DomainError):
        status, code, params = exc.status, exc.code, dict(exc.params)
    elif isinstance(exc, HTTPException):
        status = exc.status_code
        code = _HTTP_CODES.get(status, "bad_request" if status < 500 else "internal_error")
        if isinstance(exc, ValidationException):
            status, code = 400, "bad_request"
        if exc.headers:  # Allow (405), Retry-After (429, server/ratelimit.py)
            kept = {"allow", "retry-after"}
            headers.update({k: v for k, v in exc.headers.items() if k.lower() in kept})
        if status >= 500:
            _default_handler(exc)(request, exc)  # logs it
    else:
        problem = _default_handler(exc)(request, exc)  # logs, classifies (503, 400, 500…)
        status = problem.status_code
        content = problem.content if isinstance(problem.content, dict) else {}
        code = str(content.get("code", "internal_error"))
        if "Retry-After" in problem.headers:
            headers["Retry-After"] = problem.headers["Retry-After"]
    status = _STATUS_MAP.get(status, status)
    if request.method in ("GET", "HEAD"):
        headers.update(CORS_HEADERS)
    fmt = format_of(request.url.path)
    description = translate(code, lang, **params)
    return Response(
        content=errors_document(fmt, [(status, description)]),
        status_code=status,
        media_type=media_type(fmt),
        headers=headers,
    )


def open311_aware(default: Any) -> Any:
    """App-level handler: the router's 404/405 under /open311/ in the Open311 error format."""

    def handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
        if request.url.path.startswith("/open311/"):
            return open311_exception_handler(request, exc)
        answer: Response[Any] = default(request, exc)
        return answer

    return handler


def _params(request: Request[Any, Any, Any]) -> dict[str, str]:
    return {key: value for key, value in request.query_params.items()}


async def _submission(request: Request[Any, Any, Any]) -> intake.Submission:
    query_pairs = list(request.query_params.multi_items())
    body_pairs: list[tuple[str, str]] = []
    photos: list[bytes] = []
    content_type = (request.headers.get("content-type") or "").lower()
    is_form = content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data"))
    if not is_form and await request.body():
        # a JSON (or any other) body would otherwise be ignored: say so instead of "service_code"
        shown = content_type.split(";")[0].strip()[:60] or "?"
        raise Invalid("open311_form_required", content_type=shown)
    if is_form:
        form = await request.form()
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                data = await value.read()
                await value.close()
                if data:
                    if len(photos) >= MAX_PHOTOS:
                        raise service.invalid("media")
                    photos.append(data)
            else:
                body_pairs.append((key, str(value)))
    fields = {k: v for k, v in query_pairs if not k.startswith("attribute[")}
    fields.update({k: v for k, v in body_pairs if not k.startswith("attribute[")})
    answers = definitions.collect_attribute_answers(query_pairs)
    answers.update(definitions.collect_attribute_answers(body_pairs))
    return intake.Submission(fields=fields, answers=answers, photos=photos)


_ALL: dict[Any, Any] = {k: open311_exception_handler for k in EXCEPTION_HANDLERS}


class Open311Controller(Controller):
    """GeoReport v2. XML is the reference format; JSON mirrors it."""

    path = "/open311"
    guards = [public_guard]
    tags = ["open311"]
    include_in_schema = False  # errors are Open311 documents, not problem+json
    exception_handlers = _ALL

    @get(
        ["/discovery.xml", "/discovery.json", "/v2/discovery.xml", "/v2/discovery.json"],
        operation_id="open311Discovery",
    )
    async def discovery(
        self, request: Request[Any, Any, Any], settings: AppSettings
    ) -> Response[bytes]:
        lang = language_of(request)
        fmt = format_of(request.url.path)
        return _document(fmt, "discovery", service.discovery(settings, lang), lang=lang)

    @get(["/v2/services.xml", "/v2/services.json"], operation_id="open311ListServices")
    async def services(
        self, request: Request[Any, Any, Any], tx: Tx, settings: AppSettings
    ) -> Response[bytes]:
        service.check_jurisdiction(settings, request.query_params.get("jurisdiction_id"))
        lang = language_of(request)
        items = await definitions.list_services(tx, lang)
        return _document(format_of(request.url.path), "services", items, "service", lang=lang)

    @get("/v2/services/{service_code:str}", operation_id="open311ServiceDefinition")
    async def service_definition(
        self,
        request: Request[Any, Any, Any],
        tx: Tx,
        settings: AppSettings,
        service_code: FromPath[str],
    ) -> Response[bytes]:
        code, fmt = _split(service_code)
        service.check_jurisdiction(settings, request.query_params.get("jurisdiction_id"))
        lang = language_of(request)
        definition = await definitions.service_definition(tx, code, lang)
        return _document(fmt, "service_definition", definition, lang=lang)

    @post(
        ["/v2/requests.xml", "/v2/requests.json"],
        operation_id="open311CreateRequest",
        status_code=201,
        guards=[
            rate_limit_guard(
                Rule("open311", lambda s: s.rate_limit_open311, by_form_field("api_key"))
            )
        ],
        request_max_body_size=MAX_POST_BYTES,
    )
    async def create_request(
        self, request: Request[Any, Any, Any], tx: Tx, settings: AppSettings
    ) -> Response[bytes]:
        fmt = format_of(request.url.path)
        lang = language_of(request)
        sub = await _submission(request)
        service.check_jurisdiction(settings, sub.fields.get("jurisdiction_id"))
        if not (sub.fields.get("service_code") or "").strip():
            raise Invalid("open311_parameter_required", name="service_code")
        api_key = await service.authenticate(tx, (sub.fields.get("api_key") or "").strip())
        created = await intake.create_request(tx, settings, sub, api_key, lang)
        # every service is realtime: the id at once, no token (GeoReport v2 answers a token
        # *instead of* an id only for deferred services; clients that see one poll tokens/)
        item = {
            "service_request_id": str(created.id),
            "service_notice": None,
            "account_id": sub.fields.get("account_id") or None,
        }
        return _document(
            fmt, "service_requests", [item], "request", status=201, lang=lang, public=False
        )

    @get(["/v2/requests.xml", "/v2/requests.json"], operation_id="open311ListRequests")
    async def list_requests(
        self, request: Request[Any, Any, Any], tx: Tx, settings: AppSettings
    ) -> Response[bytes]:
        params = _params(request)
        service.check_jurisdiction(settings, params.get("jurisdiction_id"))
        lang = language_of(request)
        rows = await queries.find_requests(tx, queries.build_query(params), queries.page_of(params))
        items = await documents.request_documents(tx, settings, rows, lang)
        return _document(
            format_of(request.url.path), "service_requests", items, "request", lang=lang
        )

    @get("/v2/requests/{request_id:str}", operation_id="open311GetRequest")
    async def get_request(
        self,
        request: Request[Any, Any, Any],
        tx: Tx,
        settings: AppSettings,
        request_id: FromPath[str],
    ) -> Response[bytes]:
        raw_id, fmt = _split(request_id)
        service.check_jurisdiction(settings, request.query_params.get("jurisdiction_id"))
        lang = language_of(request)
        row = await queries.request_by_id(tx, raw_id)
        items = await documents.request_documents(tx, settings, [row], lang)
        return _document(fmt, "service_requests", items, "request", lang=lang)

    @get("/v2/tokens/{token:str}", operation_id="open311GetToken")
    async def token(
        self, request: Request[Any, Any, Any], tx: Tx, settings: AppSettings, token: FromPath[str]
    ) -> Response[bytes]:
        raw, fmt = _split(token)
        service.check_jurisdiction(settings, request.query_params.get("jurisdiction_id"))
        row = await queries.request_by_token(tx, raw)
        item = {"service_request_id": str(row.id), "token": row.tracking_token}
        return _document(fmt, "service_requests", [item], "request", lang=language_of(request))

    @get(
        ["/v2/servicerequestupdates.xml", "/v2/servicerequestupdates.json"],
        operation_id="open311ServiceRequestUpdates",
    )
    async def updates(
        self, request: Request[Any, Any, Any], tx: Tx, settings: AppSettings
    ) -> Response[bytes]:
        params = _params(request)
        service.check_jurisdiction(settings, params.get("jurisdiction_id"))
        lang = language_of(request)
        start, end = params.get("start_date"), params.get("end_date")
        items = await documents.request_updates(
            tx,
            settings,
            service.parse_w3c(start, "start_date") if start and start.strip() else None,
            service.parse_w3c(end, "end_date") if end and end.strip() else None,
            lang,
        )
        return _document(
            format_of(request.url.path),
            "service_request_updates",
            items,
            "request_update",
            lang=lang,
        )


class Open311KeyController(Controller):
    """Admins issue and revoke the API keys Open311 clients use to file requests."""

    path = "/api/v1/open311-keys"
    guards = [admin_guard]
    tags = ["open311"]

    @get("/", operation_id="listOpen311Keys")
    async def list_keys(self, tx: Tx) -> list[ApiKeyPublic]:
        return await service.list_api_keys(tx)

    @post(
        "/", operation_id="createOpen311Key", summary="The key is shown once; only a hash is kept"
    )
    async def create_key(
        self, tx: Tx, actor: CurrentActor, data: JSONBody[ApiKeyCreate]
    ) -> ApiKeyCreated:
        key, raw = await service.create_api_key(tx, data.name, actor.user_id)
        return ApiKeyCreated(
            **ApiKeyPublic.model_validate(key.model_dump()).model_dump(), api_key=raw
        )

    @post("/{key_id:int}/revoke", operation_id="revokeOpen311Key", status_code=200)
    async def revoke_key(self, tx: Tx, key_id: DbId) -> ApiKeyPublic:
        key = await service.revoke_api_key(tx, key_id)
        return ApiKeyPublic.model_validate(key.model_dump())


class Open311AttributeController(Controller):
    """Admins define the typed questions (Open311 attributes) of each service type."""

    path = "/api/v1/open311-attributes"
    guards = [admin_guard]
    tags = ["open311"]

    @get("/{service_code:str}", operation_id="getOpen311Attributes")
    async def get_attributes(
        self, tx: Tx, service_code: FromPath[str]
    ) -> list[AttributeDefinition]:
        return await definitions.attribute_definitions(tx, service_code)

    @put("/{service_code:str}", operation_id="replaceOpen311Attributes")
    async def replace_attributes(
        self, tx: Tx, service_code: FromPath[str], data: JSONBody[list[AttributeDefinition]]
    ) -> list[AttributeDefinition]:
        return await definitions.replace_attributes(tx, service_code, data)
