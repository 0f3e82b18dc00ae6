"""Every role against every route, including a revoked crew device.

The table below is the specification. A route the app serves that is missing from the table
fails the test, so a new route cannot ship without deciding who may call it.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support.data import login

P = "public"
A, D, C = "admin", "dispatcher", "crew"

# (method, path template) -> roles that pass the guard
MATRIX: dict[tuple[str, str], set[str]] = {
    ("GET", "/healthz"): {P},
    ("POST", "/api/v1/auth/login"): {P},
    ("POST", "/api/v1/auth/logout"): {A, D, C},
    ("GET", "/api/v1/auth/me"): {A, D, C},
    ("POST", "/api/v1/auth/stream-ticket"): {A, D, C},
    ("GET", "/api/v1/boroughs"): {A, D, C},
    ("GET", "/api/v1/service-types"): {P},
    ("POST", "/api/v1/service-types"): {A},
    ("GET", "/api/v1/users"): {A},
    ("POST", "/api/v1/users"): {A},
    ("PATCH", "/api/v1/users/{user_id:int}"): {A},
    ("GET", "/api/v1/crews"): {A, D},
    ("POST", "/api/v1/crews"): {A},
    ("GET", "/api/v1/crews/{crew_id:int}"): {A, D},
    ("PATCH", "/api/v1/crews/{crew_id:int}"): {A},
    ("GET", "/api/v1/devices"): {A, D},
    ("POST", "/api/v1/devices/{device_id:int}/revoke"): {A, D},
    ("GET", "/api/v1/requests"): {A, D},
    ("POST", "/api/v1/requests"): {A, D},
    ("GET", "/api/v1/requests/{request_id:int}"): {A, D},
    ("GET", "/api/v1/requests/{request_id:int}/duplicates"): {A, D},
    ("POST", "/api/v1/public/requests"): {P},
    ("GET", "/api/v1/public/requests/{tracking_token:str}"): {P},
    ("GET", "/api/v1/public/push/vapid-public-key"): {P},
    ("POST", "/api/v1/public/requests/{tracking_token:str}/push-subscription"): {P},
    ("DELETE", "/api/v1/public/requests/{tracking_token:str}/push-subscription"): {P},
    ("GET", "/api/v1/work-orders"): {A, D},
    ("POST", "/api/v1/work-orders"): {A, D},
    ("POST", "/api/v1/work-orders/bulk-assign"): {A, D},
    ("GET", "/api/v1/work-orders/{work_order_id:int}"): {A, D},
    ("POST", "/api/v1/work-orders/{work_order_id:int}/assign"): {A, D},
    ("POST", "/api/v1/work-orders/{work_order_id:int}/cancel"): {A, D},
    ("POST", "/api/v1/work-orders/{work_order_id:int}/merge"): {A, D},
    ("POST", "/api/v1/work-orders/{work_order_id:int}/notes"): {A, D},
    ("POST", "/api/v1/work-orders/{work_order_id:int}/priority"): {A, D},
    ("POST", "/api/v1/work-orders/{work_order_id:int}/transition"): {A, D},
    ("GET", "/api/v1/exports/work-orders"): {A, D},
    ("GET", "/api/v1/exports/requests"): {A, D},
    ("GET", "/api/v1/exports/sla"): {A, D},
    ("GET", "/api/v1/crew/work-orders"): {C},
    ("GET", "/api/v1/crew/work-orders/{work_order_id:int}"): {C},
    ("POST", "/api/v1/crew/work-orders/{work_order_id:int}/transition"): {C},
    # offline sync (server/syncapi/)
    ("POST", "/sync/v1/push"): {C},
    ("POST", "/sync/v1/pull"): {C},
    ("GET", "/sync/v1/events"): {C},
    ("GET", "/api/v1/live/events"): {A, D},
    ("GET", "/api/v1/notices"): {A, D},
    ("POST", "/api/v1/notices/{notice_id:int}/acknowledge"): {A, D},
    ("GET", "/api/v1/sync/conflicts"): {A, D},
    ("GET", "/api/v1/sync/conflicts/{conflict_id:int}"): {A, D},
    ("POST", "/api/v1/sync/conflicts/{conflict_id:int}/resolve"): {A, D},
    ("GET", "/api/v1/sync/mutations"): {A, D},
    ("GET", "/api/v1/sync/work-orders/{work_order_id:int}"): {A, D},
    # photo evidence (HEAD /api/v1/photos/{sha256} and HEAD .../uploads/{id}: tests/integration/
    # test_photos_api.py, the matrix skips HEAD)
    ("GET", "/api/v1/photos/{sha256:str}"): {A, D},
    ("GET", "/api/v1/photos/{sha256:str}/original"): {A, D},
    ("GET", "/api/v1/photos/{sha256:str}/verify"): {A, D},
    ("POST", "/api/v1/photos/{sha256:str}/withdraw"): {A, D},
    ("POST", "/api/v1/photos/uploads"): {A, D, C},
    ("GET", "/api/v1/photos/uploads/{upload_id:str}"): {A, D, C},
    ("PATCH", "/api/v1/photos/uploads/{upload_id:str}"): {A, D, C},
    ("DELETE", "/api/v1/photos/uploads/{upload_id:str}"): {A, D, C},
    ("GET", "/api/v1/work-orders/{work_order_id:int}/photos"): {A, D},
    ("GET", "/media/photos/{sha256:str}/display.jpg"): {P},
    ("GET", "/media/photos/{sha256:str}/thumb.jpg"): {P},
    # Prometheus: no role; its own TOURNEE_METRICS_TOKEN (off here: 404), tests in test_metrics
    ("GET", "/metrics"): {P},
    # Open311 GeoReport v2: public; POST checks the client's api_key inside the route
    ("GET", "/open311/discovery.xml"): {P},
    ("GET", "/open311/discovery.json"): {P},
    ("GET", "/open311/v2/discovery.xml"): {P},
    ("GET", "/open311/v2/discovery.json"): {P},
    ("GET", "/open311/v2/services.xml"): {P},
    ("GET", "/open311/v2/services.json"): {P},
    ("GET", "/open311/v2/services/{service_code:str}"): {P},
    ("POST", "/open311/v2/requests.xml"): {P},
    ("POST", "/open311/v2/requests.json"): {P},
    ("GET", "/open311/v2/requests.xml"): {P},
    ("GET", "/open311/v2/requests.json"): {P},
    ("GET", "/open311/v2/requests/{request_id:str}"): {P},
    ("GET", "/open311/v2/tokens/{token:str}"): {P},
    ("GET", "/open311/v2/servicerequestupdates.xml"): {P},
    ("GET", "/open311/v2/servicerequestupdates.json"): {P},
    ("GET", "/api/v1/open311-keys"): {A},
    ("POST", "/api/v1/open311-keys"): {A},
    ("POST", "/api/v1/open311-keys/{key_id:int}/revoke"): {A},
    ("GET", "/api/v1/open311-attributes/{service_code:str}"): {A},
    ("PUT", "/api/v1/open311-attributes/{service_code:str}"): {A},
}
# Served but outside the API: the static PWA and the OpenAPI documents are public by nature.
NOT_API = re.compile(r"^(/$|/schema|/\{file_path)")


def _concrete(path: str) -> str:
    return re.sub(r"\{[a-z_]+:(int|str)\}", lambda m: "1" if m.group(1) == "int" else "x", path)


def _served_routes(app: Any) -> set[tuple[str, str]]:
    served = set()
    for route in app.routes:
        for method in getattr(route, "methods", ()):
            if method in ("OPTIONS", "HEAD") or NOT_API.match(route.path):
                continue
            served.add((method, route.path))
    return served


async def test_matrix_covers_every_route(app: Any) -> None:
    served = _served_routes(app)
    assert served - MATRIX.keys() == set(), "routes without an authorization decision"
    assert MATRIX.keys() - served == set(), "matrix names routes the app does not serve"


@pytest.fixture
async def credentials(client: Any) -> dict[str, dict[str, str]]:
    creds = {
        "anonymous": {},
        A: await login(client, "admin", A),
        D: await login(client, "repartiteur1", D),
        C: await login(client, "mtremblay", C, device_label="Téléphone test"),
    }
    revoked = await login(client, "mtremblay", C, device_label="Téléphone perdu")
    me = await client.get("/api/v1/auth/me", headers=revoked)
    assert me.status_code == 200
    devices = (await client.get("/api/v1/devices", headers=creds[D])).json()
    lost = next(d for d in devices if d["label"] == "Téléphone perdu")
    response = await client.post(f"/api/v1/devices/{lost['id']}/revoke", headers=creds[D])
    assert response.status_code == 200
    creds["revoked"] = revoked
    return creds


async def test_every_role_against_every_route(client: Any, credentials: Any) -> None:
    failures = []
    for (method, template), allowed in sorted(MATRIX.items()):
        if template == "/api/v1/auth/logout":
            continue  # would end the session used by the rest of the matrix; tested below
        path = _concrete(template)
        for who, headers in credentials.items():
            response = await client.request(method, path, headers=headers, json={})
            status = response.status_code
            if P in allowed:
                ok = status not in (401, 403)
            elif who == "anonymous":
                ok = status == 401
            elif who == "revoked":
                ok = status == 401 and response.json()["code"] == "token_revoked"
            elif who in allowed:
                ok = status not in (401, 403)
            else:
                ok = status == 403
            assert status < 500, f"{method} {path} as {who}: {status} {response.text}"
            if not ok:
                failures.append(f"{method} {path} as {who}: {status}")
    assert failures == []


async def test_logout_ends_the_session(client: Any) -> None:
    headers = await login(client, "repartiteur1", D)
    assert (await client.post("/api/v1/auth/logout", headers=headers)).status_code == 204
    response = await client.get("/api/v1/work-orders", headers=headers)
    assert response.status_code == 401


async def test_problem_json_in_both_languages(client: Any) -> None:
    fr = await client.get("/api/v1/work-orders", headers={"Accept-Language": "fr-CA"})
    en = await client.get("/api/v1/work-orders", headers={"Accept-Language": "en-US,en;q=0.9"})
    for response in (fr, en):
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "not_authenticated"
    assert fr.json()["title"] != en.json()["title"]
    assert fr.headers["content-language"] == "fr"
    assert en.headers["content-language"] == "en"
