import { test } from "node:test";
import assert from "node:assert/strict";

import { applyLocal, rebase, sortWorkList, isOverdue } from "../../pwa/js/replica.js";

const base = { id: 1, version: 2, status: "assigned", notes: [], materials: [], photos: [] };

const cases = [
  ["set_status", { name: "workorder.set_status@1", args: { status: "on_site" } }, (v) => v.status === "on_site"],
  ["complete", { name: "workorder.complete@1", args: { outcome: "fixed", note: "ok" } }, (v) => v.status === "completed" && v.outcome === "fixed" && v.outcome_note === "ok"],
  ["add_note", { name: "workorder.add_note@1", args: { note_id: "n", body: "b" } }, (v) => v.notes.length === 1 && v.notes[0].pending],
  ["add_material", { name: "workorder.add_material@1", args: { entry_id: "m", material_code: "salt", quantity: 2, unit: "kg" } }, (v) => v.materials[0].quantity === 2],
  ["attach_photo", { name: "workorder.attach_photo@1", args: { photo_id: "p", sha256: "a".repeat(64) } }, (v) => v.photos[0].kind === "after" && !v.photos[0].received],
  ["set_field changes nothing (dispatch owns it)", { name: "workorder.set_field@1", args: { field: "priority", value: 1 } }, (v) => v.priority === undefined && v.status === "assigned"],
  ["unknown mutation changes nothing", { name: "workorder.unknown@9", args: {} }, (v) => v.status === "assigned"],
];
for (const [label, mutation, check] of cases) {
  test(`applyLocal ${label}`, () => {
    const view = applyLocal(base, { id: 1, client_ts: "2030-01-01T00:00:00Z", ...mutation });
    assert.ok(check(view));
    assert.equal(base.status, "assigned"); // pure: the input is not touched
    assert.equal(base.notes.length, 0);
  });
}

test("void_material adds the negative entry", () => {
  const withEntry = applyLocal(base, { id: 1, name: "workorder.add_material@1", args: { entry_id: "m", material_code: "salt", quantity: 2, unit: "kg" } });
  const voided = applyLocal(withEntry, { id: 2, name: "workorder.void_material@1", args: { entry_id: "v", voids: "m" } });
  assert.deepEqual(voided.materials.map((m) => m.quantity), [2, -2]);
});

test("rebase applies mutations in id order", () => {
  const view = rebase(base, [
    { id: 3, name: "workorder.complete@1", args: { outcome: "fixed" } },
    { id: 2, name: "workorder.set_status@1", args: { status: "on_site" } },
  ]);
  assert.equal(view.status, "completed");
});

test("work list: priority first, then SLA due time, then id", () => {
  const orders = [
    { id: 1, priority: 3, due_at: "2030-01-01T10:00:00Z" },
    { id: 2, priority: 1, due_at: "2030-01-02T10:00:00Z" },
    { id: 3, priority: 1, due_at: "2030-01-01T10:00:00Z" },
    { id: 4, priority: 1, due_at: "2030-01-01T10:00:00Z" },
  ];
  assert.deepEqual(sortWorkList(orders).map((o) => o.id), [3, 4, 2, 1]);
});

test("overdue: only open orders past their due time", () => {
  const now = Date.parse("2030-01-01T12:00:00Z");
  assert.equal(isOverdue({ status: "assigned", due_at: "2030-01-01T11:00:00Z" }, now), true);
  assert.equal(isOverdue({ status: "completed", due_at: "2030-01-01T11:00:00Z" }, now), false);
  assert.equal(isOverdue({ status: "on_site", due_at: "2030-01-01T13:00:00Z" }, now), false);
});
