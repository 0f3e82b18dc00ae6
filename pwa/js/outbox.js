// The outbox: the device's writes waiting for the server, in IndexedDB.
// Rules (docs/sync-protocol.md §3, ARCHITECTURE house style 8):
// - each write is stored in the SAME IndexedDB transaction as its optimistic change to the replica
//   (and, for a photo, its bytes): either all of it is saved or none;
// - mutation ids are consecutive per client_id, starting at 1;
// - nothing is ever dropped silently: an entry leaves the outbox only when the server answered
//   for it (200 with an outcome, recorded for the crew when it is not a plain "applied"), or when
//   a pull's last_mutation_id covers it, or when the server refused it as malformed (4xx), in
//   which case it moves to the dead-letter list the crew sees.

import { transaction, get, getAll, put, del } from "./idb.js";
import { applyLocal, rebuildViews } from "./replica.js";

export const PROTOCOL = 1;
export const SCHEMA_VERSION = 1;
export const MAX_BATCH = 100;

export function newUuid() {
  return globalThis.crypto.randomUUID();
}

export function newClientId() {
  return `pwa-${newUuid()}`;
}

/**
 * Queue a mutation and show it at once. One transaction: the outbox entry, the replica's local
 * view and (optional) extra records, e.g. the photo bytes: {photos: [record]}.
 * Returns the mutation id.
 */
export function enqueue(db, { name, args, base_version: baseVersion = null }, extra = {}) {
  const stores = ["meta", "outbox", "replica", ...Object.keys(extra)];
  return transaction(db, stores, "readwrite", async (tx) => {
    const id = (await get(tx.meta, "next_mutation_id")) || 1;
    const entry = {
      id,
      name,
      args,
      base_version: baseVersion,
      client_ts: new Date().toISOString(),
      acked: false,
      work_order_id: args.work_order_id ?? null,
    };
    await put(tx.outbox, entry);
    await put(tx.meta, id + 1, "next_mutation_id");
    if (entry.work_order_id != null) {
      const key = `work_order/${entry.work_order_id}`;
      const record = await get(tx.replica, key);
      if (record) await put(tx.replica, { ...record, local: applyLocal(record.local ?? record.server, entry) });
    }
    for (const [storeName, records] of Object.entries(extra)) {
      for (const record of records) await put(tx[storeName], record);
    }
    return id;
  });
}

export async function readOutbox(db) {
  return transaction(db, ["outbox"], "readonly", ({ outbox }) => getAll(outbox));
}

export async function pendingCount(db) {
  return (await readOutbox(db)).filter((e) => !e.acked).length;
}

/** The next batch to send: the oldest not-yet-acknowledged entries, ids consecutive. */
export async function nextBatch(db, limit = MAX_BATCH) {
  const pending = (await readOutbox(db)).filter((e) => !e.acked).sort((a, b) => a.id - b.id);
  const batch = [];
  for (const entry of pending) {
    if (batch.length >= limit) break;
    if (batch.length && entry.id !== batch[batch.length - 1].id + 1) break;
    batch.push(entry);
  }
  return batch;
}

/** How the client treats an HTTP answer to a push (docs/sync-protocol.md §3 retry rules). */
export function classify(status, code) {
  if (status === 0 || status === 429 || status >= 500) return "retry";
  if (status === 200) return "ok";
  if (status === 409 && code === "mutation_gap") return "gap";
  if (status === 401) return "signed_out";
  if (status === 413) return "split";
  if (status === 400 && code === "protocol_unsupported") return "upgrade";
  if (status === 403 && code === "client_id_taken") return "client_id_taken";
  if (status >= 400 && status < 500) return "bisect";
  return "retry";
}

/**
 * Record the server's per-mutation outcomes of a 200 push. "applied" entries stay, marked acked,
 * until a pull reflects them; the others leave the outbox into the notices the crew sees (kept
 * server-side too, in the conflict record), and the optimistic view drops them.
 */
export function recordResults(db, batch, answer) {
  return transaction(db, ["outbox", "notices", "meta", "replica"], "readwrite", async ({ outbox, notices, meta, replica }) => {
    const byId = new Map(batch.map((e) => [e.id, e]));
    for (const result of answer.results || []) {
      const entry = byId.get(result.id) || (await get(outbox, result.id));
      if (!entry) continue;
      if (result.outcome !== "applied") {
        await put(notices, {
          mutation_id: result.id,
          name: entry.name,
          args: entry.args,
          work_order_id: entry.work_order_id,
          outcome: result.outcome,
          code: result.code,
          conflict_id: result.conflict_id,
          at: new Date().toISOString(),
          seen: false,
        });
      }
      if (result.outcome === "applied") {
        // Kept (acked) until a pull reflects it, so the screen does not flicker back meanwhile.
        await put(outbox, { ...entry, acked: true, outcome: result.outcome });
      } else {
        // Not applied as asked: recorded in the notices above; the screen stops showing it.
        await del(outbox, entry.id);
      }
    }
    await rebuildViews(replica, await getAll(outbox));
    await put(meta, answer.last_mutation_id, "last_acked_id");
    await put(meta, new Date().toISOString(), "last_push_at");
  });
}

/**
 * The server refused this one mutation as malformed (a 4xx for a single-mutation batch): move it
 * to the dead-letter list and renumber the following pending entries so ids stay consecutive.
 */
export function deadLetter(db, entry, reason) {
  return transaction(db, ["outbox", "dead", "meta", "replica"], "readwrite", async ({ outbox, dead, meta, replica }) => {
    await del(outbox, entry.id);
    await put(dead, { mutation: entry, reason, at: new Date().toISOString() });
    const following = (await getAll(outbox)).filter((e) => e.id > entry.id && !e.acked).sort((a, b) => a.id - b.id);
    for (const e of following) await del(outbox, e.id);
    for (const e of following) await put(outbox, { ...e, id: e.id - 1 });
    const next = (await get(meta, "next_mutation_id")) || 1;
    await put(meta, Math.max(1, next - 1), "next_mutation_id");
    await rebuildViews(replica, (await getAll(outbox)));
  });
}

/**
 * 409 mutation_gap: the server last saw `lastMutationId`. If this device still holds the missing
 * ids (acknowledged earlier, e.g. the server was restored from a backup) they are sent again;
 * otherwise the device starts a new client_id and renumbers its pending entries from 1.
 */
export function handleGap(db, lastMutationId) {
  return transaction(db, ["outbox", "meta", "replica"], "readwrite", async ({ outbox, meta, replica }) => {
    const entries = (await getAll(outbox)).sort((a, b) => a.id - b.id);
    const held = entries.filter((e) => e.id > lastMutationId);
    const contiguous = held.length && held[0].id === lastMutationId + 1 &&
      held.every((e, i) => e.id === lastMutationId + 1 + i);
    if (contiguous) {
      for (const e of held) if (e.acked) await put(outbox, { ...e, acked: false });
      return "resend";
    }
    const pending = entries.filter((e) => !e.acked);
    for (const e of entries) await del(outbox, e.id);
    pending.forEach((e, i) => { e.id = i + 1; });
    for (const e of pending) await put(outbox, e);
    await put(meta, pending.length + 1, "next_mutation_id");
    await put(meta, newClientId(), "client_id");
    await del(meta, "cookie");
    await rebuildViews(replica, pending);
    return "renumbered";
  });
}

export function readDeadLetters(db) {
  return transaction(db, ["dead"], "readonly", ({ dead }) => getAll(dead));
}

export function readNotices(db) {
  return transaction(db, ["notices"], "readonly", ({ notices }) => getAll(notices));
}

/**
 * The crew has read these: notices (`notices` seqs), refused writes (`dead` seqs) and refused
 * photos (`photos` ids) are marked seen and leave the screen; nothing is deleted.
 */
export function markSeen(db, { notices: noticeSeqs = [], dead: deadSeqs = [], photos: photoIds = [] }) {
  return transaction(db, ["notices", "dead", "photos"], "readwrite", async ({ notices, dead, photos }) => {
    for (const [store, keys] of [[notices, noticeSeqs], [dead, deadSeqs], [photos, photoIds]]) {
      for (const key of keys) {
        const value = await get(store, key);
        if (value) await put(store, { ...value, seen: true });
      }
    }
  });
}
