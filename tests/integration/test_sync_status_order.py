"""Concurrent status writes through HTTP: the final status does not depend on arrival order
(docs/adr/0022). The exhaustive version is a Hypothesis property over the pure rules
(tests/unit/test_status_order_independence.py); the fleet simulator's check 5 does it with
faults."""

from __future__ import annotations

from typing import Any

from tests.support.sync_helpers import SNOW_1, Device, device, work_order


def _status(phone: Device, wo_id: int, status: str, base: int) -> dict[str, Any]:
    return phone.mutation(
        "workorder.set_status@1", {"work_order_id": wo_id, "status": status}, base
    )


async def _statuses(client: Any, dispatcher: dict[str, str], wo_id: int) -> list[list[Any]]:
    detail = (await client.get(f"/api/v1/work-orders/{wo_id}", headers=dispatcher)).json()
    return [e["changes"]["status"] for e in detail["history"] if "status" in e["changes"]]


async def test_the_issue_example_ends_the_same_in_both_arrival_orders(
    client: Any, dispatcher: dict[str, str], crews: dict[str, int]
) -> None:
    """Phone 1 arrives (assigned → on_site), phone 2, from the same version, asks for on_hold
    (not a move from assigned): on_site either way, phone 2 refused either way."""
    one, two = await device(client, "mtremblay"), await device(client, "sgagnon")
    twins = [await work_order(client, dispatcher, crews[SNOW_1]) for _ in range(2)]
    finals, refusals = [], []
    for wo, order in zip(twins, [(one, two), (two, one)], strict=True):
        answers = {}
        for phone in order:
            status = "on_site" if phone is one else "on_hold"
            answer = await phone.push(_status(phone, wo["id"], status, wo["version"]))
            answers[phone is one] = answer["results"][0]
        refusals.append((answers[False]["outcome"], answers[False]["code"]))
        assert answers[True]["outcome"] == "applied"
        await one.pull()
        finals.append(one.order(wo["id"])["status"])
    assert finals == ["on_site", "on_site"]
    assert refusals == [("rejected", "illegal_transition")] * 2
    conflict_id = answers[False]["conflict_id"]
    conflict = (
        await client.get(f"/api/v1/sync/conflicts/{conflict_id}", headers=dispatcher)
    ).json()
    assert conflict["kind"] == "invalid_transition"


async def test_an_offline_chain_over_two_pushes_is_judged_from_its_own_steps(
    client: Any, dispatcher: dict[str, str], crews: dict[str, int]
) -> None:
    """Arrive, then hold, made offline on one version and pushed separately, with another phone's
    en_route in between: the hold is legal from what the phone showed (on_site)."""
    one, two = await device(client, "mtremblay"), await device(client, "sgagnon")
    wo = await work_order(client, dispatcher, crews[SNOW_1])
    base, wid = wo["version"], wo["id"]
    assert (await one.push(_status(one, wid, "on_site", base)))["results"][0]["outcome"] == (
        "applied"
    )
    late = await two.push(_status(two, wid, "en_route", base))
    assert late["results"][0]["code"] == "status_superseded"
    held = await one.push(_status(one, wid, "on_hold", base))
    assert held["results"][0]["outcome"] == "applied"
    await one.pull()
    assert one.order(wid)["status"] == "on_hold"
    assert await _statuses(client, dispatcher, wid) == [
        [None, "new"],
        ["new", "assigned"],
        ["assigned", "on_site"],
        ["on_site", "on_hold"],
    ]


async def test_after_a_refusal_the_next_tap_is_judged_from_the_pulled_status(
    client: Any, dispatcher: dict[str, str], crews: dict[str, int]
) -> None:
    """A refused write is dropped from the app's view: the phone's next write, on the same
    version, is judged from the status it pulled, not from the refused one."""
    phone = await device(client, "mtremblay")
    wo = await work_order(client, dispatcher, crews[SNOW_1])
    base, wid = wo["version"], wo["id"]
    refused = await phone.push(_status(phone, wid, "on_hold", base))
    assert refused["results"][0]["outcome"] == "rejected"
    await phone.pull()
    assert phone.order(wid)["version"] == base
    started = await phone.push(_status(phone, wid, "en_route", base))
    assert started["results"][0]["outcome"] == "applied"


async def test_the_office_moved_the_order_back_while_the_crew_held_it(
    client: Any, dispatcher: dict[str, str], crews: dict[str, int]
) -> None:
    """Reassigned to the same crew (back to assigned) while a phone, offline on on_site, held
    the work: on_hold outranks assigned and is reached through legal steps."""
    phone = await device(client, "mtremblay")
    wo = await work_order(client, dispatcher, crews[SNOW_1])
    wid = wo["id"]
    await phone.push(_status(phone, wid, "on_site", wo["version"]))
    await phone.pull()
    base = phone.order(wid)["version"]
    response = await client.post(
        f"/api/v1/work-orders/{wid}/assign", json={"crew_id": crews[SNOW_1]}, headers=dispatcher
    )
    assert response.status_code == 200, response.text
    answer = await phone.push(_status(phone, wid, "on_hold", base))
    assert answer["results"][0]["outcome"] == "applied"
    await phone.pull()
    assert phone.order(wid)["status"] == "on_hold"
    assert (await _statuses(client, dispatcher, wid))[-3:] == [
        ["on_site", "assigned"],
        ["assigned", "on_site"],
        ["on_site", "on_hold"],
    ]
