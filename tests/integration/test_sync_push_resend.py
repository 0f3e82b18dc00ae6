"""A UUID sent again under a new mutation id, in a later batch (a renumbered outbox): the push's
fast path inserts new notes and material entries without looking their UUIDs up first, so this
is the case where it must fall back to the per-mutation path and still answer as the protocol
says (same content: applied, no second row; other content: rejected uuid_reused)."""

from __future__ import annotations

from typing import Any

from tests.support.sync_helpers import SNOW_1, crew_ids, device, new_uuid, work_order


async def test_uuids_sent_again_in_a_later_batch(client: Any, dispatcher: dict[str, str]) -> None:
    crews = await crew_ids(client, dispatcher)
    phone = await device(client, "mtremblay")
    wo = await work_order(client, dispatcher, crews[SNOW_1])
    wid, v = wo["id"], wo["version"]
    note_id, entry_id = new_uuid(), new_uuid()

    def note(body: str, key: str | None = None) -> dict[str, Any]:
        args = {"work_order_id": wid, "note_id": key or new_uuid(), "body": body}
        return phone.mutation("workorder.add_note@1", args, v)

    def material(quantity: float, key: str | None = None) -> dict[str, Any]:
        args = {
            "work_order_id": wid,
            "entry_id": key or new_uuid(),
            "material_code": "salt",
            "quantity": quantity,
            "unit": "kg",
        }
        return phone.mutation("workorder.add_material@1", args, v)

    first = await phone.push(note("Glace", note_id), material(4, entry_id))
    assert [r["outcome"] for r in first["results"]] == ["applied", "applied"]
    again = await phone.push(
        note("Avant"),
        note("Glace", note_id),  # same content: applied, nothing new
        material(4, entry_id),
        note("Autre chose", note_id),  # other content: refused
        material(5, entry_id),
        material(1),
    )
    assert [(r["outcome"], r["code"]) for r in again["results"]] == [
        ("applied", None),
        ("applied", None),
        ("applied", None),
        ("rejected", "uuid_reused"),
        ("rejected", "uuid_reused"),
        ("applied", None),
    ]
    await phone.pull()
    value = phone.order(wid)
    assert sorted(n["body"] for n in value["notes"]) == ["Avant", "Glace"]
    assert sorted(m["quantity"] for m in value["materials"]) == [1.0, 4.0]
