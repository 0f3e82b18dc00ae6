// The device's read replica: what the server last sent (pull) plus, per work order, a local view
// with this device's pending mutations applied on top (optimistic UI). The local view is only a
// display: it never decides a conflict. The server decides (docs/sync-protocol.md) and the next
// pull replaces the server value; the local view is then rebuilt from the mutations still pending.

import { transaction, get, getAll, put, del, clear } from "./idb.js";

const OPEN = new Set(["new", "assigned", "en_route", "on_site", "on_hold"]);

export function isOpen(status) {
  return OPEN.has(status);
}

/** Show on `value` (a work_order value) what `mutation` asked for. Pure; returns a copy. */
export function applyLocal(value, mutation) {
  if (!value) return value;
  const next = structuredClone(value);
  const args = mutation.args || {};
  next.pending = true;
  switch (mutation.name) {
    case "workorder.set_status@1":
      next.status = args.status;
      break;
    case "workorder.complete@1":
      next.status = "completed";
      next.outcome = args.outcome;
      next.outcome_note = args.note ?? null;
      next.completed_at = args.completed_at ?? mutation.client_ts ?? null;
      break;
    case "workorder.add_note@1":
      next.notes = [...(next.notes || []).filter((n) => n.id !== args.note_id),
        { id: args.note_id, body: args.body, author: null, created_at: mutation.client_ts, pending: true }];
      break;
    case "workorder.add_material@1":
      next.materials = [...(next.materials || []).filter((m) => m.id !== args.entry_id),
        { id: args.entry_id, material_code: args.material_code, quantity: args.quantity, unit: args.unit,
          voids: null, created_at: mutation.client_ts, pending: true }];
      break;
    case "workorder.void_material@1": {
      const original = (next.materials || []).find((m) => m.id === args.voids);
      if (original) {
        next.materials = [...next.materials.filter((m) => m.id !== args.entry_id),
          { id: args.entry_id, material_code: original.material_code, quantity: -original.quantity,
            unit: original.unit, voids: args.voids, created_at: mutation.client_ts, pending: true }];
      }
      break;
    }
    case "workorder.attach_photo@1":
      next.photos = [...(next.photos || []).filter((p) => p.id !== args.photo_id),
        { id: args.photo_id, sha256: args.sha256, kind: args.kind || "after", received: false,
          created_at: mutation.client_ts, pending: true }];
      break;
    default:
      break; // set_field and unknown mutations change nothing locally (dispatch owns those fields)
  }
  return next;
}

/** The local view of a work order: the server value with the pending mutations re-applied. */
export function rebase(serverValue, mutations) {
  let view = serverValue ? structuredClone(serverValue) : serverValue;
  for (const mutation of [...mutations].sort((a, b) => a.id - b.id)) view = applyLocal(view, mutation);
  return view;
}

export function viewOf(record) {
  if (!record) return null;
  return record.local ?? record.server;
}

/** Today's work list: open orders of the crew, by priority (1 first), then SLA due time. */
export function sortWorkList(orders) {
  return [...orders].sort((a, b) =>
    (a.priority ?? 9) - (b.priority ?? 9) ||
    String(a.due_at ?? "").localeCompare(String(b.due_at ?? "")) ||
    a.id - b.id);
}

export function isOverdue(order, now = Date.now()) {
  return isOpen(order.status) && !!order.due_at && Date.parse(order.due_at) < now;
}

export async function readWorkOrders(db) {
  const records = await transaction(db, ["replica"], "readonly", ({ replica }) => getAll(replica));
  return records.filter((r) => r.key.startsWith("work_order/")).map(viewOf).filter(Boolean);
}

export async function readWorkOrder(db, id) {
  const record = await transaction(db, ["replica"], "readonly", ({ replica }) => get(replica, `work_order/${id}`));
  return viewOf(record);
}

export async function readReference(db, prefix) {
  const records = await transaction(db, ["replica"], "readonly", ({ replica }) => getAll(replica));
  return records.filter((r) => r.key.startsWith(`${prefix}/`)).map((r) => r.server);
}

/**
 * Apply a whole pull (all its pages) atomically: one transaction over replica, outbox and meta.
 * - reset: the read replica is cleared first (the outbox is kept);
 * - the outbox entries with id <= last_mutation_id are reflected in the data: dropped;
 * - every work order with mutations still in the outbox gets its local view rebuilt.
 */
export function applyPull(db, { patch, cookie, last_mutation_id: lastMutationId, reset, server_time: serverTime }) {
  return transaction(db, ["replica", "outbox", "meta"], "readwrite", async ({ replica, outbox, meta }) => {
    if (reset) await clear(replica);
    for (const op of patch) {
      if (op.op === "put") await put(replica, { key: op.key, server: op.value, local: null });
      else if (op.op === "del") await del(replica, op.key);
    }
    const remaining = [];
    for (const entry of await getAll(outbox)) {
      if (entry.id <= lastMutationId) await del(outbox, entry.id);
      else remaining.push(entry);
    }
    await rebuildViews(replica, remaining);
    await put(meta, cookie, "cookie");
    await put(meta, serverTime || new Date().toISOString(), "last_pull_at");
    return { remaining: remaining.length };
  });
}

/** Rebuild the local views of every work order (inside the caller's transaction). */
export async function rebuildViews(replica, outboxEntries) {
  const byOrder = new Map();
  for (const entry of outboxEntries) {
    if (entry.work_order_id == null) continue;
    if (!byOrder.has(entry.work_order_id)) byOrder.set(entry.work_order_id, []);
    byOrder.get(entry.work_order_id).push(entry);
  }
  for (const record of await getAll(replica)) {
    if (!record.key.startsWith("work_order/")) continue;
    const id = Number(record.key.slice("work_order/".length));
    const mutations = byOrder.get(id) || [];
    const local = mutations.length ? rebase(record.server, mutations) : null;
    if (local !== record.local) await put(replica, { ...record, local });
  }
}
