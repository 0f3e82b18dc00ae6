"""PostgreSQL proofs with real concurrent transactions (docs/adr/0011, 0012).

1. Two connections push concurrent edits to the same work order: the second waits for the
   first's row lock, then the policies decide against the committed state; nothing is lost.
2. A pull cannot miss a row whose transaction commits out of order: T1 writes first (lower
   stamp) and commits last; a pull between the two commits sees T2's row, and the next pull
   still finds T1's, where a "max change_seq seen" cursor would have skipped it.
3. The acknowledged-mutation watermark is read in the same snapshot as the data.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from server.accounts.auth import Actor
from server.accounts.models import AccessToken, User
from server.db import Database
from server.settings import get_settings
from server.syncapi import service
from server.syncapi.models import MutationIn, PushRequest
from server.workorders import service as wo_service
from server.workorders.models import WorkOrder
from tests.support.data import login
from tests.support.sync_helpers import SNOW_1, crew_ids, device, new_uuid, work_order

pytestmark = pytest.mark.postgres_only


async def _actor(db: Database, username: str) -> Actor:
    async with db.transaction() as tx:
        user = (await tx.execute(select(User).where(User.username == username))).scalar_one()
        token = (
            (
                await tx.execute(
                    select(AccessToken)
                    .where(AccessToken.user_id == user.id)
                    .order_by(AccessToken.id.desc())  # type: ignore[union-attr]
                )
            )
            .scalars()
            .first()
        )
    assert token is not None and user.id is not None and token.id is not None
    return Actor(
        user.id, user.username, user.role, token.crew_id or user.crew_id, token.id, token.kind, "fr"
    )


def _push_body(
    client_id: str, first_id: int, *mutations: tuple[str, dict[str, Any], int]
) -> PushRequest:
    return PushRequest(
        protocol=1,
        schema_version=1,
        client_id=client_id,
        mutations=[
            MutationIn(id=first_id + i, name=name, base_version=base, args=args)
            for i, (name, args, base) in enumerate(mutations)
        ],
    )


async def test_two_connections_push_concurrent_edits_to_one_order(client: Any) -> None:
    desk = await login(client, "repartiteur1", "dispatcher")
    crews = await crew_ids(client, desk)
    first, second = await device(client, "mtremblay"), await device(client, "sgagnon")
    wo = await work_order(client, desk, crews[SNOW_1])
    wid, base = wo["id"], wo["version"]
    db = Database(get_settings())
    try:
        actor_1, actor_2 = await _actor(db, "mtremblay"), await _actor(db, "sgagnon")
        entry_1, entry_2 = new_uuid(), new_uuid()
        body_1 = _push_body(
            "pg-device-one",
            1,
            ("workorder.set_status@1", {"work_order_id": wid, "status": "en_route"}, base),
            (
                "workorder.add_material@1",
                {
                    "work_order_id": wid,
                    "entry_id": entry_1,
                    "material_code": "salt",
                    "quantity": 10,
                    "unit": "kg",
                },
                base,
            ),
        )
        body_2 = _push_body(
            "pg-device-two",
            1,
            ("workorder.set_status@1", {"work_order_id": wid, "status": "on_site"}, base),
            (
                "workorder.add_material@1",
                {
                    "work_order_id": wid,
                    "entry_id": entry_2,
                    "material_code": "salt",
                    "quantity": 5,
                    "unit": "kg",
                },
                base,
            ),
            ("workorder.set_status@1", {"work_order_id": wid, "status": "en_route"}, base),
        )
        async with db.sessionmaker() as tx_1, db.sessionmaker() as tx_2:
            answer_1 = await service.push(tx_1, actor_1, body_1)  # holds the row lock
            task = asyncio.create_task(service.push(tx_2, actor_2, body_2))
            done, _ = await asyncio.wait({task}, timeout=0.5)
            assert not done, "the second connection must wait for the first one's lock"
            await tx_1.commit()
            answer_2 = await asyncio.wait_for(task, 10)
            await tx_2.commit()
    finally:
        await db.dispose()
    assert [r.outcome for r in answer_1.results] == ["applied", "applied"]
    # device two edited version `base` too: on_site outranks en_route and is legal → applied;
    # its later en_route is no move from its own on_site (what its screen showed): refused,
    # whatever arrived first (docs/adr/0022), with a conflict record
    assert [(r.outcome, r.code) for r in answer_2.results] == [
        ("applied", None),
        ("applied", None),
        ("rejected", "illegal_transition"),
    ]
    await first.pull()
    value = first.order(wid)
    assert value["status"] == "on_site"
    assert {m["id"]: m["quantity"] for m in value["materials"]} == {entry_1: 10.0, entry_2: 5.0}
    history = (await client.get(f"/api/v1/work-orders/{wid}", headers=desk)).json()["history"]
    statuses = [e["changes"]["status"] for e in history if "status" in e["changes"]]
    assert statuses == [
        [None, "new"],
        ["new", "assigned"],
        ["assigned", "en_route"],
        ["en_route", "on_site"],
    ]
    assert value["version"] == base + 2  # no lost update: both status writes are counted
    await second.pull()
    assert second.replica == first.replica


async def test_pull_never_misses_a_row_committed_out_of_order(client: Any) -> None:
    desk = await login(client, "repartiteur1", "dispatcher")
    crews = await crew_ids(client, desk)
    phone = await device(client, "mtremblay")
    wo_a = await work_order(client, desk, crews[SNOW_1])
    wo_b = await work_order(client, desk, crews[SNOW_1])
    await phone.pull()
    db = Database(get_settings())
    try:
        dispatcher = await _actor(db, "repartiteur1")
        async with db.sessionmaker() as t1, db.sessionmaker() as t2:
            # T1 writes first: it gets the lower transaction id (its change stamp) ...
            await wo_service.set_priority(t1, wo_a["id"], 1, dispatcher, None)
            await t1.flush()
            # ... T2 writes later and commits first
            await wo_service.set_priority(t2, wo_b["id"], 1, dispatcher, None)
            await t2.commit()
            await phone.pull()
            # T2's change is seen; T1's is not (a row may be sent again while another
            # transaction holds the snapshot's xmin back: puts are idempotent)
            assert phone.order(wo_b["id"])["priority"] == 1
            assert phone.order(wo_a["id"])["priority"] == wo_a["priority"] != 1
            await t1.commit()
        async with db.sessionmaker() as tx:
            seqs = dict(
                (
                    await tx.execute(
                        select(WorkOrder.id, WorkOrder.change_seq).where(
                            WorkOrder.id.in_([wo_a["id"], wo_b["id"]])  # type: ignore[union-attr]
                        )
                    )
                ).all()
            )
            seq_a, seq_b = seqs[wo_a["id"]], seqs[wo_b["id"]]
    finally:
        await db.dispose()
    # the out-of-order commit really happened: a "rows above the highest stamp seen" cursor
    # (seq_b) would skip wo_a forever
    assert seq_a < seq_b
    pages = await phone.pull()
    keys = [op["key"] for op in pages[0]["patch"]]
    assert f"work_order/{wo_a['id']}" in keys
    assert phone.order(wo_a["id"])["priority"] == 1
    assert phone.order(wo_b["id"])["priority"] == 1


async def test_watermark_and_data_come_from_one_snapshot(client: Any) -> None:
    desk = await login(client, "repartiteur1", "dispatcher")
    crews = await crew_ids(client, desk)
    phone = await device(client, "mtremblay")
    wo = await work_order(client, desk, crews[SNOW_1])
    await phone.pull()
    db = Database(get_settings())
    try:
        actor = await _actor(db, "mtremblay")
        note_id = new_uuid()
        body = _push_body(
            phone.client_id,
            1,
            (
                "workorder.add_note@1",
                {"work_order_id": wo["id"], "note_id": note_id, "body": "x"},
                1,
            ),
        )
        async with db.sessionmaker() as tx:
            await service.push(tx, actor, body)
            pages = await phone.pull()  # the push has not committed: neither data nor watermark
            assert pages[0]["last_mutation_id"] == 0
            assert phone.order(wo["id"])["notes"] == []  # (the row may be sent again)
            await tx.commit()
    finally:
        await db.dispose()
    pages = await phone.pull()
    assert pages[0]["last_mutation_id"] == 1
    assert [n["id"] for n in phone.order(wo["id"])["notes"]] == [note_id]


async def test_a_mutation_failing_in_the_database_is_rejected_alone(client: Any) -> None:
    """Two phones reuse one note UUID on two orders at the same time: the second insert fails
    in PostgreSQL (primary key) after the first commits; only that mutation is rejected."""
    desk = await login(client, "repartiteur1", "dispatcher")
    crews = await crew_ids(client, desk)
    await device(client, "mtremblay")
    await device(client, "sgagnon")
    wo_1 = await work_order(client, desk, crews[SNOW_1])
    wo_2 = await work_order(client, desk, crews[SNOW_1])
    shared, other = new_uuid(), new_uuid()
    db = Database(get_settings())
    try:
        actor_1, actor_2 = await _actor(db, "mtremblay"), await _actor(db, "sgagnon")
        body_1 = _push_body(
            "pg-clash-one",
            1,
            (
                "workorder.add_note@1",
                {"work_order_id": wo_1["id"], "note_id": shared, "body": "a"},
                1,
            ),
        )
        body_2 = _push_body(
            "pg-clash-two",
            1,
            (
                "workorder.add_note@1",
                {"work_order_id": wo_2["id"], "note_id": other, "body": "b"},
                1,
            ),
            (
                "workorder.add_note@1",
                {"work_order_id": wo_2["id"], "note_id": shared, "body": "c"},
                1,
            ),
        )
        async with db.sessionmaker() as tx_1, db.sessionmaker() as tx_2:
            await service.push(tx_1, actor_1, body_1)
            task = asyncio.create_task(service.push(tx_2, actor_2, body_2))
            done, _ = await asyncio.wait({task}, timeout=0.5)
            assert not done  # waiting on the first transaction's uncommitted key
            await tx_1.commit()
            answer = await asyncio.wait_for(task, 10)
            await tx_2.commit()
    finally:
        await db.dispose()
    assert [(r.outcome, r.code) for r in answer.results] == [
        ("applied", None),
        ("rejected", "uuid_reused"),
    ]
    assert answer.last_mutation_id == 2
    value = (await client.get(f"/api/v1/sync/work-orders/{wo_2['id']}", headers=desk)).json()
    assert [n["id"] for n in value["notes"]] == [other]
