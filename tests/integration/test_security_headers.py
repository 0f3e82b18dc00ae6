"""Security headers on every response (server/security_headers.py), no-store on private JSON,
and no CDN script on the app's origin unless the schema page is enabled (issue 12, "Headers")."""

from __future__ import annotations

import dataclasses
from typing import Any

from tests.support.data import login


def _assert_hardened(headers: Any) -> str:
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-frame-options"] == "DENY"
    policy = str(headers["content-security-policy"])
    return policy


async def test_the_app_shell_has_a_strict_policy(client: Any) -> None:
    for path in ("/", "/index.html", "/js/app.js", "/sw.js", "/manifest.webmanifest"):
        answer = await client.get(path)
        assert answer.status_code == 200, path
        policy = _assert_hardened(answer.headers)
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
        assert directives["default-src"] == "'self'"
        assert directives["script-src"] == "'self'"
        assert directives["style-src"] == "'self'"
        assert directives["frame-ancestors"] == "'none'"
        assert directives["worker-src"] == "'self' blob:"
        assert directives["img-src"] == "'self' blob: data:"
        assert directives["object-src"] == "'none'"
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert "no-store" not in answer.headers.get("cache-control", "")  # the shell is cached


async def test_private_json_is_never_stored(client: Any, dispatcher: dict[str, str]) -> None:
    for path in ("/api/v1/work-orders", "/api/v1/requests", "/api/v1/auth/me"):
        answer = await client.get(path, headers=dispatcher)
        assert answer.status_code == 200, (path, answer.text)
        assert answer.headers["cache-control"] == "no-store", path
        _assert_hardened(answer.headers)
    crew = await login(client, "mtremblay", "crew", device_label="Téléphone cache")
    pulled = await client.post(
        "/sync/v1/pull",
        json={"protocol": 1, "schema_version": 1, "client_id": "cache-test-1", "cookie": None},
        headers=crew,
    )
    assert pulled.status_code == 200, pulled.text
    assert pulled.headers["cache-control"] == "no-store"
    # errors too: the router's own 404 and a problem+json 401
    for answer in (await client.get("/api/v1/nothing-here"), await client.get("/api/v1/users")):
        assert answer.status_code in (401, 404)
        assert answer.headers["cache-control"] == "no-store"
        _assert_hardened(answer.headers)


async def test_the_schema_page_is_off_by_default_and_the_document_is_served(client: Any) -> None:
    assert (await client.get("/schema/swagger")).status_code == 404
    document = await client.get("/schema/openapi.json")
    assert document.status_code == 200
    assert document.json()["info"]["title"] == "Tournée"
    assert "cdn." not in (await client.get("/schema")).text


async def test_the_schema_page_when_enabled_is_confined(app: Any) -> None:
    from litestar.testing import AsyncTestClient

    from server.app import create_app
    from server.settings import get_settings

    enabled = create_app(dataclasses.replace(get_settings(), schema_ui=True))
    async with AsyncTestClient(app=enabled) as client:
        page = await client.get("/schema/swagger")
        assert page.status_code == 200
        policy = page.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
        shell = await client.get("/")
        assert "cdn.jsdelivr.net" not in shell.headers["content-security-policy"]
