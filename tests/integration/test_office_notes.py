"""Dispatchers' notes to the crew: in the order's detail, on the crew's phones at the next pull
(without a version bump, so offline edits do not conflict), idempotent by note id."""

from __future__ import annotations

import uuid
from typing import Any

from tests.support.sync_helpers import SNOW_1, crew_ids, device, work_order


async def test_office_note_reaches_the_crew_and_the_detail(
    client: Any, dispatcher: dict[str, str]
) -> None:
    phone = await device(client, "mtremblay")
    wo = await work_order(client, dispatcher, (await crew_ids(client, dispatcher))[SNOW_1])
    await phone.pull()
    before = phone.order(wo["id"])

    note_id = str(uuid.uuid4())
    added = await client.post(
        f"/api/v1/work-orders/{wo['id']}/notes",
        json={"body": "  Code du portail : 1234  ", "note_id": note_id},
        headers=dispatcher,
    )
    assert added.status_code == 201, added.text
    note = added.json()
    assert note["id"] == note_id
    assert note["body"] == "Code du portail : 1234"
    assert note["author"] == "repartiteur1" and note["from_office"] is True
    # a retried POST (lost answer) adds nothing
    again = await client.post(
        f"/api/v1/work-orders/{wo['id']}/notes",
        json={"body": "Code du portail : 1234", "note_id": note_id},
        headers=dispatcher,
    )
    assert again.status_code == 200 and again.json()["id"] == note_id

    await phone.pull()
    after = phone.order(wo["id"])
    assert [n["body"] for n in after["notes"]] == ["Code du portail : 1234"]
    assert after["notes"][0]["author"] == "repartiteur1"
    assert after["version"] == before["version"]  # not a versioned field: no conflict offline

    detail = (await client.get(f"/api/v1/work-orders/{wo['id']}", headers=dispatcher)).json()
    assert [n["id"] for n in detail["notes"]] == [note_id]
    assert any(e["action"] == "note_added" for e in detail["history"])


async def test_office_note_refusals(client: Any, dispatcher: dict[str, str]) -> None:
    wo = await work_order(client, dispatcher, None)
    url = f"/api/v1/work-orders/{wo['id']}/notes"
    for body, status in (
        ({"body": ""}, 400),
        ({"body": "x" * 2001}, 400),
        ({"body": "ok", "note_id": "not-a-uuid"}, 400),
        ({"body": "   "}, 422),
    ):
        answer = await client.post(url, json=body, headers=dispatcher)
        assert answer.status_code == status, (body, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
    missing = await client.post(
        "/api/v1/work-orders/999999/notes", json={"body": "x"}, headers=dispatcher
    )
    assert missing.status_code == 404
    # a note id already used on another order is refused, not moved
    other = await work_order(client, dispatcher, None)
    note_id = str(uuid.uuid4())
    first = await client.post(url, json={"body": "a", "note_id": note_id}, headers=dispatcher)
    assert first.status_code == 201
    taken = await client.post(
        f"/api/v1/work-orders/{other['id']}/notes",
        json={"body": "a", "note_id": note_id},
        headers=dispatcher,
    )
    assert taken.status_code == 409 and taken.json()["code"] == "note_id_taken"
