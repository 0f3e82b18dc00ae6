"""Security headers on every HTTP response, in one ``before_send`` hook (so the router's own
404/405 and the exception handlers' problem+json get them too).

- ``Content-Security-Policy`` (:data:`CSP`): scripts, styles, fonts, fetches only from our own
  origin, no inline script or style, no ``eval``; images and workers also from ``blob:`` (photo
  thumbnails made in a worker, ``createImageBitmap``/``OffscreenCanvas``) and images from
  ``data:``; no ``<object>``, no ``<base>``, not framed (``frame-ancestors 'none'``). A response
  that sets its own policy keeps it (photo originals: ``sandbox``).
- ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY`` (older browsers),
  ``Referrer-Policy: no-referrer`` (citizens' tracking links carry a token).
- ``Cache-Control: no-store`` on ``/api/`` and ``/sync/`` (reporters' contact data, tokens):
  nothing of it in a shared or browser cache. The public photo copies (``/media/``) and the PWA
  shell keep their own caching.
- The interactive OpenAPI page, only when ``TOURNEE_SCHEMA_UI`` enables it, loads Swagger UI
  from its CDN with an inline start-up script: it gets :data:`SCHEMA_UI_CSP` instead.
"""

from __future__ import annotations

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "manifest-src 'self'",
        "media-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

SCHEMA_UI_PATH = "/schema/swagger"
SCHEMA_UI_CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src https://cdn.jsdelivr.net 'unsafe-inline'",
        "style-src https://cdn.jsdelivr.net 'unsafe-inline'",
        "img-src 'self' data: https://cdn.jsdelivr.net",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    )
)

ALWAYS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}

_PRIVATE_PREFIXES = ("/api/", "/sync/")


async def add_security_headers(message: Message, scope: Scope) -> None:
    if message["type"] != "http.response.start":
        return
    headers = MutableScopeHeaders.from_message(message)
    for name, value in ALWAYS.items():
        if name not in headers:
            headers[name] = value
    path: str = scope.get("path", "")
    if path == SCHEMA_UI_PATH:
        headers["content-security-policy"] = SCHEMA_UI_CSP
    elif "content-security-policy" not in headers:
        headers["content-security-policy"] = CSP
    if path.startswith(_PRIVATE_PREFIXES) and "no-store" not in headers.get("cache-control", ""):
        headers["cache-control"] = "no-store"
