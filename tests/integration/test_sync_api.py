"""Offline sync through HTTP: every mutation, ordering, policies, conflicts, pull semantics."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.sync_helpers import SNOW_1, SNOW_2, device, new_uuid, work_order

SHA = "a" * 64


async def _conflict(client: Any, dispatcher: dict[str, str], conflict_id: int) -> dict[str, Any]:
    response = await client.get(f"/api/v1/sync/conflicts/{conflict_id}", headers=dispatcher)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _history(client: Any, dispatcher: dict[str, str], wo_id: int) -> list[dict[str, Any]]:
    detail = (await client.get(f"/api/v1/work-orders/{wo_id}", headers=dispatcher)).json()
    return list(detail["history"])


# --------------------------------------------------------------------------- every mutation


async def test_every_mutation_applies_and_reaches_the_pull(
    client: Any, dispatcher: dict[str, str], crews: dict[str, int]
) -> None:
    phone = await device(client, "mtremblay")
    wo = await work_order(client, dispatcher, crews[SNOW_1])
    await phone.pull()
    v = phone.order(wo["id"])["version"]
    note_id, entry_id, void_id, photo_id = new_uuid(), new_uuid(), new_uuid(), new_uuid()
    wid = wo["id"]
    answer = await phone.push(
        phone.mutation("workorder.set_status@1", {"work_order_id": wid, "status": "en_route"}, v),
        phone.mutation("workorder.set_status@1", {"work_order_id": wid, "status": "on_site"}, v),
        phone.mutation(
            "workorder.add_note@1", {"work_order_id": wid, "note_id": note_id, "body": "Glace"}, v
        ),
        phone.mutation(
            "workorder.add_material@1",
            {
                "work_order_id": wid,
                "entry_id": entry_id,
                "material_code": "salt",
                "quantity": 25,
                "unit": "kg",
            },
            v,
        ),
        phone.mutation(
            "workorder.void_material@1",
            {"work_order_id": wid, "entry_id": void_id, "voids": entry_id, "reason": "erreur"},
            v,
        ),
        phone.mutation(
            "workorder.attach_photo@1",
            {
                "work_order_id": wid,
                "photo_id": photo_id,
                "sha256": SHA,
                "kind": "after",
                "lat": 46.81,
                "lon": -71.2,
            },
            v,
        ),
        phone.mutation(
            "workorder.complete@1",
            {"work_order_id": wid, "outcome": "fixed", "note": "Trottoir dégagé"},
            v,
        ),
    )
    assert answer["last_mutation_id"] == 7
    assert [r["outcome"] for r in answer["results"]] == ["applied"] * 7, answer["results"][-1]
    await phone.pull()
    value = phone.order(wid)
    assert value["status"] == "completed"
    assert value["outcome"] == "fixed"
    assert value["outcome_note"] == "Trottoir dégagé"
    assert [n["id"] for n in value["notes"]] == [note_id]
    quantities = {m["id"]: m["quantity"] for m in value["materials"]}
    assert quantities == {entry_id: 25.0, void_id: -25.0}
    assert sum(quantities.values()) == 0
    assert [(p["id"], p["sha256"], p["received"]) for p in value["photos"]] == [
        (photo_id, SHA, False)
    ]
    # status changes went through the work-order service: audit rows carry the device
    history = await _history(client, dispatcher, wid)
    crew_events = [e for e in history if e["actor_role"] == "crew"]
    assert [e["action"] for e in crew_events] == ["start_route", "arrive", "complete"]
    assert all(e["device_id"] is not None for e in crew_events)
    # the dispatcher's view of the same value
    desk = (await client.get(f"/api/v1/sync/work-orders/{wid}", headers=dispatcher)).json()
    assert desk["materials"] == value["materials"]
    log = (
        await client.get(
            "/api/v1/sync/mutations", params={"client_id": phone.client_id}, headers=dispatcher
        )
    ).json()
    assert [(e["id"], e["outcome"]) for e in log] == [(i, "applied") for i in range(1, 8)]


async def test_resend_is_acknowledged_again_without_a_second_effect(
    client: Any, dispatcher: dict[str, str], crews: dict[str, int]
) -> None:
    phone = await device(client, "mtremblay")
    wo = await work_order(client, dispatcher, crews[SNOW_1])
    batch = [
        phone.mutation(
            "workorder.add_material@1",
            {
                "work_order_id": wo["id"],
                "entry_id": new_uuid(),
                "material_code": "sand",
                "quantity": 2,
                "unit": "t",
            },
            wo["version"],
        ),
        phone.mutation(
            "workorder.set_status@1",
            {"work_order_id": wo["id"], "status": "en_route"},
            wo["version"],
        ),
    ]
    first = await phone.push(*batch)
    again = await phone.push(*batch)  # the answer was lost: the device resends
    assert again["last_mutation_id"] == first["last_mutation_id"] == 2
    assert [r["replayed"] for r in again["results"]] == [True, True]
    assert [r["outcome"] for r in again["results"]] == [r["outcome"] for r in first["results"]]
    await phone.pull()
    value = phone.order(wo["id"])
    assert len(value["materials"]) == 1
    assert value["status"] == "en_route"
    actions = [e["action"] for e in await _history(client, dispatcher, wo["id"])]
    assert actions.count("start_route") == 1
    # a re-sent UUID under a new mutation id is harmless too
    repeat = dict(batch[0], id=3)
    answer = await phone.push(repeat)
    assert answer["results"][0]["outcome"] == "applied"
    await phone.pull()
    assert len(phone.order(wo["id"])["materials"]) == 1


async def test_gap_answers_the_last_acknowledged_id(
    client: Any, dispatcher: dict[str, str], crews: dict[str, int]
) -> None:
    phone = await device(client, "mtremblay")
    wo = await work_order(client, dispatcher, crews[SNOW_1])
    note = {"work_order_id": wo["id"], "note_id": new_uuid(), "body": "un"}
    await phone.push(phone.mutation("workorder.add_note@1", note, 1))
    phone.next_id = 5  # mutations 2–4 lost
    response = await phone.push_raw(
        [phone.mutation("workorder.add_note@1", dict(note, note_id=new_uuid()), 1)]
    )
    assert response.status_code == 409
    assert response.json()["code"] == "mutation_gap"
    assert response.json()["params"]["last_mutation_id"] == 1
    # not consecutive inside one batch: an envelope error
    response = await phone.push_raw(
        [
            {"id": 2, "name": "workorder.add_note@1", "args": note},
            {"id": 4, "name": "workorder.add_note@1", "args": note},
        ]
    )
    assert response.status_code == 400
    assert response.json()["code"] == "mutation_order_invalid"


async def test_a_rejected_mutation_does_not_block_the_next_ones(
    client: Any, dispatcher: dict[str, str], crews: dict[str, int]
) -> None:
    phone = await device(client, "mtremblay")
    wo = await work_order(client, dispatcher, crews[SNOW_1])
    other = await work_order(client, dispatcher, crews[SNOW_2])
    wid, v = wo["id"], wo["version"]
    answer = await phone.push(
        phone.mutation("workorder.set_status@1", {"work_order_id": wid, "status": "on_hold"}, v),
        phone.mutation("workorder.explode@1", {"work_order_id": wid}, v),
        phone.mutation("workorder.add_note@9", {"work_order_id": wid}, v),
        phone.mutation("workorder.add_note@1", {"work_order_id": wid, "note_id": "x"}, v),
        phone.mutation("workorder.complete@1", {"work_order_id": wid, "outcome": "nope"}, v),
        phone.mutation("workorder.set_status@1", {"work_order_id": wid, "status": "new"}, v),
        phone.mutation(
            "workorder.add_note@1", {"work_order_id": 999999, "note_id": new_uuid(), "body": "?"}, v
        ),
        phone.mutation(
            "workorder.add_note@1",
            {"work_order_id": other["id"], "note_id": new_uuid(), "body": "?"},
            v,
        ),
        phone.mutation("workorder.set_status@1", {"work_order_id": wid, "status": "en_route"}, v),
    )
    codes = [(r["outcome"], r["code"]) for r in answer["results"]]
    assert codes == [
        ("rejected", "illegal_transition"),
        ("rejected", "mutation_unknown"),
        ("rejected", "mutation_version_unsupported"),
        ("rejected", "args_invalid"),
        ("rejected", "outcome_unknown"),
        ("rejected", "status_not_settable"),
        ("rejected", "work_order_unknown"),
        ("rejected", "not_your_crew"),
        ("applied", None),
    ]
    assert answer["last_mutation_id"] == 9
    first = await _conflict(client, dispatcher, answer["results"][0]["conflict_id"])
    assert first["kind"] == "invalid_transition"
    assert first["client_value"]["args"] == {"work_order_id": wid, "status": "on_hold"}
    assert first["mutation_id"] == 1 and first["client_id"] == phone.client_id
    assert all(r["conflict_id"] for r in answer["results"][:8])
    await phone.pull()
    assert phone.order(wid)["status"] == "en_route"


# --------------------------------------------------------------------------- policies


async def test_concurrent_status_lower_precedence_is_superseded(
    client: Any, dispatcher: dict[str, str], crews: dict[str, int]
) -> None:
    phone = await device(client, "mtremblay")
    wo = await work_order(client, dispatcher, crews[SNOW_1])
    response = await client.post(
        f"/api/v1/work-orders/{wo['id']}/cancel", json={"reason": "doublon"}, headers=dispatcher
    )
    assert response.status_code == 200
    answer = await phone.push(
        phone.mutation(
            "workorder.set_status@1",
            {"work_order_id": wo["id"], "status": "en_route"},
            wo["version"],
        )
    )
    result = answer["results"][0]
    assert (result["outcome"], result["code"]) == ("applied_with_conflict", "status_superseded")
    conflict = await _conflict(client, dispatcher, result["conflict_id"])
    assert conflict["kind"] == "status_superseded"
    assert conflict["server_value"] == "cancelled" and conflict["client_value"] == "en_route"
    await phone.pull()
    assert phone.order(wo["id"])["status"] == "cancelled"
    assert phone.order(wo["id"])["conflicts"][0]["id"] == result["conflict_id"]


async def test_concurrent_status_higher_precedence_wins_when_legal(
    client: Any, dispatcher: dict[str, str], crews: dict[str, int]
) -> None:
    first = await device(client, "mtremblay")
    second = await device(client, "sgagnon")  # same crew, another phone
    wo = await work_order(client, dispatcher, crews[SNOW_1])
    base = wo["version"]
    await first.push(
        first.mutation(
            "workorder.set_status@1", {"work_order_id": wo["id"], "status": "en_route"}, base
        )
    )
    answer = await second.push(
        second.mutation(
            "workorder.set_status@1", {"work_order_id": wo["id"], "status": "on_site"}, base
        )
    )
    assert answer["results"][0]["outcome"] == "applied"
    # and the other way round: the slower phone's lower status loses
    late = await first.push(
        first.mutation(
            "workorder.set_status@1", {"work_order_id": wo["id"], "status": "en_route"}, base
        )
    )
    assert late["results"][0]["code"] == "status_superseded"
    await first.pull()
    assert first.order(wo["id"])["status"] == "on_site"


async def test_completion_while_cancelled_keeps_both_and_dispatch_decides(
    client: Any, dispatcher: dict[str, str], crews: dict[str, int]
) -> None:
    phone = await device(client, "mtremblay")
    wo = await work_order(client, dispatcher, crews[SNOW_1])
    await client.post(
        f"/api/v1/work-orders/{wo['id']}/cancel", json={"reason": "annulé"}, headers=dispatcher
    )
    answer = await phone.push(
        phone.mutation(
            "workorder.complete@1",
            {
                "work_order_id": wo["id"],
                "outcome": "fixed",
                "note": "fait",
                "completed_at": "2025-01-15T10:00:00-05:00",
            },
            wo["version"],
        )
    )
    result = answer["results"][0]
    assert (result["outcome"], result["code"]) == (
        "applied_with_conflict",
        "completion_not_applied",
    )
    conflict = await _conflict(client, dispatcher, result["conflict_id"])
    assert conflict["severity"] == "high"
    assert conflict["client_value"]["outcome"] == "fixed"
    await phone.pull()
    value = phone.order(wo["id"])
    assert value["status"] == "cancelled" and value["work_performed"] is True
    listed = (
        await client.get(
            "/api/v1/sync/conflicts",
            params={"kind": "completion_not_applied", "status": "open", "crew_id": crews[SNOW_1]},
            headers=dispatcher,
        )
    ).json()
    assert [c["id"] for c in listed["items"]] == [result["conflict_id"]]
    wrong = await client.post(
        f"/api/v1/sync/conflicts/{result['conflict_id']}/resolve",
        json={"resolution": "accept_suggestion"},
        headers=dispatcher,
    )
    assert wrong.status_code == 422 and wrong.json()["code"] == "resolution_not_allowed"
    response = await client.post(
        f"/api/v1/sync/conflicts/{result['conflict_id']}/resolve",
        json={"resolution": "accept_completion", "note": "travail confirmé"},
        headers=dispatcher,
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "resolved"
    again = await client.post(
        f"/api/v1/sync/conflicts/{result['conflict_id']}/resolve",
        json={"resolution": "dismiss"},
        headers=dispatcher,
    )
    assert again.status_code == 409 and again.json()["code"] == "conflict_already_resolved"
    # the resolution syncs to the crew like any other change
    await phone.pull()
    value = phone.order(wo["id"])
    assert value["status"] == "completed" and value["outcome"] == "fixed"
    assert value["conflicts"][0]["status"] == "resolved"
    resolved = (
        await client.get(
            "/api/v1/sync/conflicts", params={"status": "resolved"}, headers=dispatcher
        )
    ).json()
    assert resolved["total"] == 1
    actions = [e["action"] for e in await _history(client, dispatcher, wo["id"])]
    assert actions[-3:] == ["work_performed", "reopen", "complete"]


@pytest.mark.parametrize(
    "resolution, status", [("keep_cancellation", "cancelled"), ("reopen", "assigned")]
)
async def test_other_resolutions_of_a_completion_conflict(
    client: Any, dispatcher: dict[str, str], crews: dict[str, int], resolution: str, status: str
) -> None:
    phone = await device(client, "mtremblay")
    wo = await work_order(client, dispatcher, crews[SNOW_1])
    await client.post(
        f"/api/v1/work-orders/{wo['id']}/cancel", json={"reason": "x"}, headers=dispatcher
    )
    answer = await phone.push(
        phone.mutation(
            "workorder.complete@1", {"work_order_id": wo["id"], "outcome": "fixed"}, wo["version"]
        )
    )
    conflict_id = answer["results"][0]["conflict_id"]
    response = await client.post(
        f"/api/v1/sync/conflicts/{conflict_id}/resolve",
        json={"resolution": resolution},
        headers=dispatcher,
    )
    assert response.status_code == 200, response.text
    await phone.pull()
    assert phone.order(wo["id"])["status"] == status


async def test_dispatcher_fields_become_suggestions(
    client: Any, dispatcher: dict[str, str], crews: dict[str, int]
) -> None:
    phone = await device(client, "mtremblay")
    wo = await work_order(client, dispatcher, crews[SNOW_1])
    answer = await phone.push(
        phone.mutation(
            "workorder.set_field@1",
            {"work_order_id": wo["id"], "field": "priority", "value": 1},
            wo["version"],
        ),
        phone.mutation(
            "workorder.set_field@1",
            {
                "work_order_id": wo["id"],
                "field": "location",
                "value": {"lat": 46.82, "lon": -71.21},
            },
            wo["version"],
        ),
    )
    assert [r["code"] for r in answer["results"]] == ["suggestion", "suggestion"]
    await phone.pull()
    assert phone.order(wo["id"])["priority"] == wo["priority"]  # unchanged
    for result in answer["results"]:
        response = await client.post(
            f"/api/v1/sync/conflicts/{result['conflict_id']}/resolve",
            json={"resolution": "accept_suggestion"},
            headers=dispatcher,
        )
        assert response.status_code == 200, response.text
    await phone.pull()
    value = phone.order(wo["id"])
    assert value["priority"] == 1
    assert (value["lat"], value["lon"]) == (46.82, -71.21)


async def test_edits_from_a_crew_reassigned_away_are_accepted_and_flagged(
    client: Any, dispatcher: dict[str, str], crews: dict[str, int]
) -> None:
    phone = await device(client, "mtremblay")
    wo = await work_order(client, dispatcher, crews[SNOW_1])
    await phone.pull()
    response = await client.post(
        f"/api/v1/work-orders/{wo['id']}/assign",
        json={"crew_id": crews[SNOW_2]},
        headers=dispatcher,
    )
    assert response.status_code == 200
    v = wo["version"]
    answer = await phone.push(
        phone.mutation(
            "workorder.add_note@1",
            {"work_order_id": wo["id"], "note_id": new_uuid(), "body": "vu"},
            v,
        ),
        phone.mutation(
            "workorder.set_status@1", {"work_order_id": wo["id"], "status": "en_route"}, v
        ),
        phone.mutation(
            "workorder.add_material@1",
            {
                "work_order_id": wo["id"],
                "entry_id": new_uuid(),
                "material_code": "salt",
                "quantity": 1,
                "unit": "kg",
            },
            v,
        ),
    )
    outcomes = {(r["outcome"], r["code"]) for r in answer["results"]}
    assert outcomes == {("applied_with_conflict", "reassigned_away")}
    assert len({r["conflict_id"] for r in answer["results"]}) == 1  # one flag per order and crew
    # the pull shows it read-only, with the note and material kept
    await phone.pull()
    value = phone.order(wo["id"])
    assert value["reassigned_away"] is True and value["status"] == "assigned"
    assert len(value["notes"]) == 1 and len(value["materials"]) == 1
    other = await device(client, "icote")
    await other.pull()
    assert other.order(wo["id"])["reassigned_away"] is False
    assert len(other.order(wo["id"])["notes"]) == 1


async def test_completion_from_a_crew_reassigned_away_completes_and_flags(
    client: Any, dispatcher: dict[str, str], crews: dict[str, int]
) -> None:
    phone = await device(client, "mtremblay")
    wo = await work_order(client, dispatcher, crews[SNOW_1])
    await client.post(
        f"/api/v1/work-orders/{wo['id']}/assign",
        json={"crew_id": crews[SNOW_2]},
        headers=dispatcher,
    )
    answer = await phone.push(
        phone.mutation(
            "workorder.complete@1", {"work_order_id": wo["id"], "outcome": "fixed"}, wo["version"]
        )
    )
    assert answer["results"][0]["code"] == "reassigned_away"
    detail = (await client.get(f"/api/v1/work-orders/{wo['id']}", headers=dispatcher)).json()
    assert detail["status"] == "completed"


async def test_append_policies(
    client: Any, dispatcher: dict[str, str], crews: dict[str, int]
) -> None:
    phone = await device(client, "mtremblay")
    wo = await work_order(client, dispatcher, crews[SNOW_1])
    wid, v = wo["id"], wo["version"]
    note_id, entry_id, photo_id = new_uuid(), new_uuid(), new_uuid()
    answer = await phone.push(
        phone.mutation(
            "workorder.add_note@1", {"work_order_id": wid, "note_id": note_id, "body": "a"}, v
        ),
        phone.mutation(
            "workorder.add_note@1", {"work_order_id": wid, "note_id": note_id, "body": "b"}, v
        ),
        phone.mutation(
            "workorder.add_material@1",
            {
                "work_order_id": wid,
                "entry_id": entry_id,
                "material_code": "salt",
                "quantity": 3,
                "unit": "kg",
            },
            v,
        ),
        phone.mutation(
            "workorder.void_material@1",
            {"work_order_id": wid, "entry_id": new_uuid(), "voids": entry_id},
            v,
        ),
        phone.mutation(
            "workorder.void_material@1",
            {"work_order_id": wid, "entry_id": new_uuid(), "voids": entry_id},
            v,
        ),
        phone.mutation(
            "workorder.void_material@1",
            {"work_order_id": wid, "entry_id": new_uuid(), "voids": new_uuid()},
            v,
        ),
        phone.mutation(
            "workorder.attach_photo@1",
            {"work_order_id": wid, "photo_id": photo_id, "sha256": SHA},
            v,
        ),
        phone.mutation(
            "workorder.attach_photo@1",
            {"work_order_id": wid, "photo_id": photo_id, "sha256": "b" * 64},
            v,
        ),
    )
    assert [(r["outcome"], r["code"]) for r in answer["results"]] == [
        ("applied", None),
        ("rejected", "uuid_reused"),
        ("applied", None),
        ("applied", None),
        ("rejected", "material_already_voided"),
        ("rejected", "material_entry_unknown"),
        ("applied", None),
        ("rejected", "uuid_reused"),
    ]
    # facts from the field are accepted on a closed order too
    await client.post(f"/api/v1/work-orders/{wid}/cancel", json={"reason": "x"}, headers=dispatcher)
    late = await phone.push(
        phone.mutation(
            "workorder.add_note@1", {"work_order_id": wid, "note_id": new_uuid(), "body": "c"}, v
        )
    )
    assert late["results"][0]["outcome"] == "applied"


# --------------------------------------------------------------------------- pull


async def test_pull_scope_removal_and_tail(
    client: Any, dispatcher: dict[str, str], crews: dict[str, int]
) -> None:
    phone = await device(client, "mtremblay")
    mine = await work_order(client, dispatcher, crews[SNOW_1])
    theirs = await work_order(client, dispatcher, crews[SNOW_2])
    unassigned = await work_order(client, dispatcher, None)
    pages = await phone.pull()
    assert pages[0]["reset"] is True and pages[0]["upgrade"] is False
    keys = set(phone.replica)
    assert f"work_order/{mine['id']}" in keys
    assert f"work_order/{theirs['id']}" not in keys
    assert f"work_order/{unassigned['id']}" not in keys
    assert "service_type/snow-sidewalk" in keys and "outcome/fixed" in keys
    # nothing changed: no news (on a busy PostgreSQL a row may be sent again, unchanged)
    before = dict(phone.replica)
    pages = await phone.pull()
    assert pages[0]["reset"] is False
    assert phone.replica == before
    # reassigned away: kept read-only in the tail, then removed once it ages out
    await client.post(
        f"/api/v1/work-orders/{mine['id']}/assign",
        json={"crew_id": crews[SNOW_2]},
        headers=dispatcher,
    )
    await client.post(
        f"/api/v1/work-orders/{unassigned['id']}/assign",
        json={"crew_id": crews[SNOW_1]},
        headers=dispatcher,
    )
    pages = await phone.pull()
    assert phone.order(mine["id"])["reassigned_away"] is True
    assert phone.order(unassigned["id"])["status"] == "assigned"
    # with no tail, the reassigned order leaves the scope as a del
    before = dict(phone.replica)
    await phone.pull()  # no change
    assert phone.replica == before


async def test_pull_sends_del_when_leaving_the_scope_with_no_tail(
    client: Any, dispatcher: dict[str, str], crews: dict[str, int], app: Any
) -> None:
    from dataclasses import replace

    from litestar.testing import AsyncTestClient

    from server.app import create_app
    from server.settings import get_settings

    no_tail = create_app(replace(get_settings(), sync_tail_hours=0))
    async with AsyncTestClient(app=no_tail, raise_server_exceptions=False) as other_client:
        phone = await device(other_client, "mtremblay")
        wo = await work_order(other_client, dispatcher, crews[SNOW_1])
        done = await work_order(other_client, dispatcher, crews[SNOW_1])
        await phone.pull()
        assert f"work_order/{wo['id']}" in phone.replica
        await other_client.post(
            f"/api/v1/work-orders/{wo['id']}/assign",
            json={"crew_id": crews[SNOW_2]},
            headers=dispatcher,
        )
        await other_client.post(
            f"/api/v1/work-orders/{done['id']}/cancel", json={"reason": "x"}, headers=dispatcher
        )
        pages = await phone.pull()
        ops = {(op["op"], op["key"]) for op in pages[0]["patch"]}
        assert ops == {("del", f"work_order/{wo['id']}"), ("del", f"work_order/{done['id']}")}
        assert f"work_order/{wo['id']}" not in phone.replica


async def test_pull_pages_and_resets(
    client: Any, dispatcher: dict[str, str], crews: dict[str, int]
) -> None:
    phone = await device(client, "mtremblay")
    orders = [await work_order(client, dispatcher, crews[SNOW_1]) for _ in range(5)]
    pages = await phone.pull(limit=2)
    assert [p["has_more"] for p in pages] == [True, True, False]
    assert [p["reset"] for p in pages] == [True, False, False]
    assert {f"work_order/{o['id']}" for o in orders} <= set(phone.replica)
    # a change made while paging is not lost
    response = await phone.pull_raw(phone.cookie, limit=1)
    assert all(op["value"] == phone.replica[op["key"]] for op in response.json()["patch"])
    for o in orders[:3]:
        await client.post(
            f"/api/v1/work-orders/{o['id']}/priority", json={"priority": 1}, headers=dispatcher
        )
    first = (await phone.pull_raw(phone.cookie, limit=2)).json()
    assert first["has_more"] is True
    await client.post(
        f"/api/v1/work-orders/{orders[0]['id']}/priority", json={"priority": 2}, headers=dispatcher
    )
    second = (await phone.pull_raw(first["cookie"], limit=2)).json()
    assert second["has_more"] is False
    third = (await phone.pull_raw(second["cookie"], limit=2)).json()
    changed = {op["key"]: op["value"]["priority"] for op in third["patch"]}
    assert changed[f"work_order/{orders[0]['id']}"] == 2
    # unknown, garbled or foreign cookies: a full resync
    for cookie in ("garbage", "eyJ2Ijo5fQ", "x" * 50):
        response = await phone.pull_raw(cookie)
        assert response.status_code == 200
        assert response.json()["reset"] is True


async def test_last_mutation_id_and_upgrade(
    client: Any, dispatcher: dict[str, str], crews: dict[str, int]
) -> None:
    phone = await device(client, "mtremblay")
    wo = await work_order(client, dispatcher, crews[SNOW_1])
    pages = await phone.pull()
    assert pages[0]["last_mutation_id"] == 0
    await phone.push(
        phone.mutation(
            "workorder.add_note@1",
            {"work_order_id": wo["id"], "note_id": new_uuid(), "body": "x"},
            1,
        )
    )
    pages = await phone.pull()
    assert pages[0]["last_mutation_id"] == 1
    assert len(phone.order(wo["id"])["notes"]) == 1
    # a too-old app: told to upgrade, its pushes still accepted
    old = (await phone.pull_raw(phone.cookie, schema_version=0)).json()
    assert old["upgrade"] is True and old["patch"] == [] and old["cookie"] == phone.cookie
    response = await phone.push_raw(
        [
            phone.mutation(
                "workorder.add_note@1",
                {"work_order_id": wo["id"], "note_id": new_uuid(), "body": "y"},
                1,
            )
        ],
        schema_version=0,
    )
    assert response.status_code == 200
    assert response.json()["results"][0]["outcome"] == "applied"
    bad = await phone.push_raw([], protocol=2)
    assert bad.status_code == 400
    bad = await phone.pull_raw(None, protocol=2)
    assert bad.status_code == 400 and bad.json()["code"] == "protocol_unsupported"


async def test_only_crew_devices_sync_and_client_ids_belong_to_one_user(
    client: Any, dispatcher: dict[str, str], crews: dict[str, int]
) -> None:
    phone = await device(client, "mtremblay")
    wo = await work_order(client, dispatcher, crews[SNOW_1])
    await phone.push(
        phone.mutation(
            "workorder.add_note@1",
            {"work_order_id": wo["id"], "note_id": new_uuid(), "body": "x"},
            1,
        )
    )
    thief = await device(client, "sgagnon")
    thief.client_id = phone.client_id
    response = await thief.pull_raw(None)
    assert response.status_code == 403 and response.json()["code"] == "client_id_taken"
    response = await client.post(
        "/sync/v1/pull",
        json={"protocol": 1, "schema_version": 1, "client_id": "dispatcher-x", "cookie": None},
        headers=dispatcher,
    )
    assert response.status_code == 403
    # a device that signs in again keeps its client id and counter
    again = await device(client, "mtremblay")
    again.client_id, again.next_id = phone.client_id, phone.next_id
    answer = await again.push(
        again.mutation(
            "workorder.add_note@1",
            {"work_order_id": wo["id"], "note_id": new_uuid(), "body": "y"},
            1,
        )
    )
    assert answer["last_mutation_id"] == 2
