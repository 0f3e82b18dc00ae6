// Unit tests of the outbox and replica modules over fake-indexeddb (a real IndexedDB
// implementation in memory): same transactions and stores as in the browser.
import "fake-indexeddb/auto";
import { test } from "node:test";
import assert from "node:assert/strict";

import { openDatabase, getMeta, setMeta, transaction, put } from "../../pwa/js/idb.js";
import {
  enqueue, readOutbox, pendingCount, nextBatch, classify, recordResults, deadLetter, handleGap,
  readDeadLetters, readNotices,
} from "../../pwa/js/outbox.js";
import { applyPull, readWorkOrder } from "../../pwa/js/replica.js";

let counter = 0;
async function freshDb() {
  const db = await openDatabase(`test-${++counter}`);
  await setMeta(db, { client_id: "pwa-test-client" });
  return db;
}

const order = (id, extra = {}) => ({
  id, version: 3, status: "assigned", priority: 2, due_at: "2030-01-01T00:00:00Z", notes: [], materials: [], photos: [],
  conflicts: [], ...extra,
});

async function seed(db, ...orders) {
  await applyPull(db, {
    patch: orders.map((o) => ({ op: "put", key: `work_order/${o.id}`, value: o })),
    cookie: "K1", last_mutation_id: 0, reset: true,
  });
}

test("enqueue numbers mutations from 1 and writes the optimistic view in the same transaction", async () => {
  const db = await freshDb();
  await seed(db, order(12));
  const a = await enqueue(db, { name: "workorder.set_status@1", args: { work_order_id: 12, status: "on_site" }, base_version: 3 });
  const b = await enqueue(db, { name: "workorder.add_note@1", args: { work_order_id: 12, note_id: "n1", body: "Bac renversé" }, base_version: 3 });
  assert.deepEqual([a, b], [1, 2]);
  const view = await readWorkOrder(db, 12);
  assert.equal(view.status, "on_site");
  assert.deepEqual(view.notes.map((n) => n.body), ["Bac renversé"]);
  assert.equal(await pendingCount(db), 2);
  assert.equal(await getMeta(db, "next_mutation_id"), 3);
});

test("a failed enqueue leaves neither the outbox entry nor the optimistic change", async () => {
  const db = await freshDb();
  await seed(db, order(12));
  // A record without a keyPath value makes the photos put throw inside the transaction.
  await assert.rejects(enqueue(db, { name: "workorder.attach_photo@1", args: { work_order_id: 12, photo_id: "p", sha256: "0".repeat(64) } },
    { photos: [{ no_key: true }] }));
  assert.equal((await readOutbox(db)).length, 0);
  assert.equal((await readWorkOrder(db, 12)).photos.length, 0);
  assert.equal(await getMeta(db, "next_mutation_id"), null);
});

test("the outbox survives closing and reopening the database", async () => {
  const name = `persist-${++counter}`;
  let db = await openDatabase(name);
  await enqueue(db, { name: "workorder.complete@1", args: { work_order_id: 5, outcome: "fixed" } });
  db.close();
  db = await openDatabase(name);
  const entries = await readOutbox(db);
  assert.equal(entries.length, 1);
  assert.equal(entries[0].args.outcome, "fixed");
});

test("nextBatch takes consecutive unacknowledged entries up to the limit", async () => {
  const db = await freshDb();
  for (let i = 0; i < 5; i++) await enqueue(db, { name: "workorder.add_note@1", args: { work_order_id: 1, note_id: `n${i}`, body: "x" } });
  assert.deepEqual((await nextBatch(db, 3)).map((e) => e.id), [1, 2, 3]);
  await recordResults(db, await nextBatch(db, 2), { last_mutation_id: 2, results: [{ id: 1, outcome: "applied" }, { id: 2, outcome: "applied" }] });
  assert.deepEqual((await nextBatch(db)).map((e) => e.id), [3, 4, 5]);
  assert.equal(await pendingCount(db), 3);
});

const classifyCases = [
  [0, null, "retry"], [500, "internal_error", "retry"], [503, "database_busy", "retry"], [429, "too_many_requests", "retry"],
  [200, null, "ok"], [409, "mutation_gap", "gap"], [401, "token_revoked", "signed_out"], [401, "not_authenticated", "signed_out"],
  [413, "body_too_large", "split"], [400, "protocol_unsupported", "upgrade"], [400, "validation_failed", "bisect"],
  [400, "mutation_order_invalid", "bisect"], [403, "device_required", "bisect"], [403, "client_id_taken", "client_id_taken"],
];
for (const [status, code, expected] of classifyCases) {
  test(`classify ${status} ${code} → ${expected}`, () => assert.equal(classify(status, code), expected));
}

test("results: conflicts and rejections become notices and leave the optimistic view", async () => {
  const db = await freshDb();
  await seed(db, order(13));
  await enqueue(db, { name: "workorder.complete@1", args: { work_order_id: 13, outcome: "fixed" }, base_version: 3 });
  await enqueue(db, { name: "workorder.set_status@1", args: { work_order_id: 13, status: "bogus" }, base_version: 3 });
  await recordResults(db, await nextBatch(db), {
    last_mutation_id: 2,
    results: [
      { id: 1, outcome: "applied_with_conflict", conflict_id: 4, code: "completion_not_applied" },
      { id: 2, outcome: "rejected", conflict_id: 5, code: "status_not_settable" },
    ],
  });
  const notices = await readNotices(db);
  assert.deepEqual(notices.map((n) => [n.outcome, n.code, n.work_order_id]),
    [["applied_with_conflict", "completion_not_applied", 13], ["rejected", "status_not_settable", 13]]);
  assert.equal(await pendingCount(db), 0);
  assert.equal((await readOutbox(db)).length, 0);
  assert.equal((await readWorkOrder(db, 13)).status, "assigned"); // not shown as done any more
  await applyPull(db, { patch: [{ op: "put", key: "work_order/13", value: order(13, { version: 5, status: "cancelled", work_performed: true }) }], cookie: "K2", last_mutation_id: 2, reset: false });
  assert.equal((await readOutbox(db)).length, 0);
  const view = await readWorkOrder(db, 13);
  assert.equal(view.status, "cancelled");
  assert.equal(view.work_performed, true);
});

test("an applied entry stays (acked) until a pull covers it: no flicker", async () => {
  const db = await freshDb();
  await seed(db, order(8));
  await enqueue(db, { name: "workorder.set_status@1", args: { work_order_id: 8, status: "en_route" }, base_version: 3 });
  await recordResults(db, await nextBatch(db), { last_mutation_id: 1, results: [{ id: 1, outcome: "applied" }] });
  assert.equal(await pendingCount(db), 0);
  assert.equal((await readWorkOrder(db, 8)).status, "en_route");
  await applyPull(db, { patch: [], cookie: "K2", last_mutation_id: 1, reset: false });
  assert.equal((await readOutbox(db)).length, 0);
});

test("a pull rebases the mutations it does not cover on the new server value", async () => {
  const db = await freshDb();
  await seed(db, order(7));
  await enqueue(db, { name: "workorder.set_status@1", args: { work_order_id: 7, status: "en_route" }, base_version: 3 });
  await enqueue(db, { name: "workorder.add_note@1", args: { work_order_id: 7, note_id: "n2", body: "Arrivé" }, base_version: 3 });
  await applyPull(db, {
    patch: [{ op: "put", key: "work_order/7", value: order(7, { version: 4, status: "en_route", priority: 1 }) }],
    cookie: "K3", last_mutation_id: 1, reset: false,
  });
  const view = await readWorkOrder(db, 7);
  assert.equal(view.priority, 1);
  assert.deepEqual(view.notes.map((n) => n.id), ["n2"]);
  assert.deepEqual((await readOutbox(db)).map((e) => e.id), [2]);
  assert.equal(await getMeta(db, "cookie"), "K3");
});

test("reset clears the read replica but keeps the outbox", async () => {
  const db = await freshDb();
  await seed(db, order(1), order(2));
  await enqueue(db, { name: "workorder.add_note@1", args: { work_order_id: 2, note_id: "n", body: "b" } });
  await applyPull(db, { patch: [{ op: "put", key: "work_order/2", value: order(2) }], cookie: "K", last_mutation_id: 0, reset: true });
  assert.equal(await readWorkOrder(db, 1), null);
  assert.equal((await readWorkOrder(db, 2)).notes.length, 1);
  assert.equal(await pendingCount(db), 1);
});

test("del removes a work order that left the scope", async () => {
  const db = await freshDb();
  await seed(db, order(1));
  await applyPull(db, { patch: [{ op: "del", key: "work_order/1" }, { op: "del", key: "work_order/99" }], cookie: "K", last_mutation_id: 0, reset: false });
  assert.equal(await readWorkOrder(db, 1), null);
});

test("dead-lettering keeps the write visible and renumbers the following ones", async () => {
  const db = await freshDb();
  await seed(db, order(4));
  for (const body of ["a", "b", "c"]) await enqueue(db, { name: "workorder.add_note@1", args: { work_order_id: 4, note_id: body, body } });
  const [, second] = await nextBatch(db);
  await deadLetter(db, second, { status: 400, code: "validation_failed" });
  const entries = await readOutbox(db);
  assert.deepEqual(entries.map((e) => [e.id, e.args.body]), [[1, "a"], [2, "c"]]);
  assert.equal(await getMeta(db, "next_mutation_id"), 3);
  const dead = await readDeadLetters(db);
  assert.equal(dead.length, 1);
  assert.equal(dead[0].mutation.args.body, "b");
  assert.equal(dead[0].reason.code, "validation_failed");
  assert.deepEqual((await readWorkOrder(db, 4)).notes.map((n) => n.body), ["a", "c"]);
});

test("gap: held acknowledged ids are sent again", async () => {
  const db = await freshDb();
  for (const id of ["a", "b", "c"]) await enqueue(db, { name: "workorder.add_note@1", args: { work_order_id: 4, note_id: id, body: id } });
  await recordResults(db, await nextBatch(db, 2), { last_mutation_id: 2, results: [{ id: 1, outcome: "applied" }, { id: 2, outcome: "applied" }] });
  assert.equal(await handleGap(db, 1), "resend");
  assert.deepEqual((await nextBatch(db)).map((e) => e.id), [2, 3]);
});

test("gap: without the missing ids the device takes a new client_id and renumbers from 1", async () => {
  const db = await freshDb();
  for (const id of ["a", "b", "c"]) await enqueue(db, { name: "workorder.add_note@1", args: { work_order_id: 4, note_id: id, body: id } });
  await recordResults(db, await nextBatch(db, 1), { last_mutation_id: 1, results: [{ id: 1, outcome: "applied" }] });
  await setMeta(db, { cookie: "K" });
  // the server says it last saw nothing from this client (e.g. restored from an old backup)…
  // …but holds 0 while we only keep 2 and 3 pending and 1 acked: 1 is held → resend path.
  assert.equal(await handleGap(db, 0), "resend");
  // now a server that lost more than we hold: last seen 5 with our pending starting lower is a
  // different client history → new client id
  await transaction(db, ["outbox"], "readwrite", async ({ outbox }) => {
    await put(outbox, { id: 9, name: "workorder.add_note@1", args: { work_order_id: 4, note_id: "z", body: "z" }, acked: false, work_order_id: 4 });
  });
  assert.equal(await handleGap(db, 20), "renumbered");
  const entries = await readOutbox(db);
  assert.deepEqual(entries.map((e) => e.id), [1, 2, 3, 4]);
  assert.notEqual(await getMeta(db, "client_id"), "pwa-test-client");
  assert.equal(await getMeta(db, "cookie"), null);
  assert.equal(await getMeta(db, "next_mutation_id"), 5);
});
