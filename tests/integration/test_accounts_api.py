"""Users, crews and devices: validation of optional enum fields (found by the fuzzer)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.data import login


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/users/{user}", {"language": "xyz"}),
        ("/api/v1/users/{user}", {"role": "boss"}),
        ("/api/v1/crews/{crew}", {"kind": "garbage-truck"}),
    ],
)
async def test_optional_enum_fields_are_validated(
    client: Any, path: str, body: dict[str, Any]
) -> None:
    admin = await login(client, "admin", "admin")
    users = (await client.get("/api/v1/users", headers=admin)).json()
    crews = (await client.get("/api/v1/crews", headers=admin)).json()
    url = path.format(user=users[0]["id"], crew=crews[0]["id"])
    response = await client.patch(url, json=body, headers=admin)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "validation_failed"
    after_users = (await client.get("/api/v1/users", headers=admin)).json()
    after_crews = (await client.get("/api/v1/crews", headers=admin)).json()
    assert after_users == users and after_crews == crews, "nothing written"


async def test_admin_updates_a_user_and_crew(client: Any) -> None:
    admin = await login(client, "admin", "admin")
    users = (await client.get("/api/v1/users", headers=admin)).json()
    target = next(u for u in users if u["username"] == "repartiteur2")
    response = await client.patch(
        f"/api/v1/users/{target['id']}", json={"language": "en"}, headers=admin
    )
    assert response.status_code == 200 and response.json()["language"] == "en"
    crew = (await client.get("/api/v1/crews", headers=admin)).json()[0]
    response = await client.patch(
        f"/api/v1/crews/{crew['id']}", json={"kind": "other"}, headers=admin
    )
    assert response.status_code == 200 and response.json()["kind"] == "other"
