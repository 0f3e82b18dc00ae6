// The crew device's sync: two independent lanes (docs/adr/0061).
// - mutations: push the outbox, then pull the scope. Runs on start, on reconnect, on visibility
//   change, after each change, on a server hint and on its own timer (backoff on failure, a
//   periodic pull while online). Never queued behind a photo.
// - photos: one resumable upload at a time, with its own backoff. Between two chunks it waits
//   for a running push/pull to finish, so a note written during a long photo backlog goes first.
// Conflict rules live on the server only.

import { request, retryAfterMs } from "./api.js";
import { getMeta, setMeta } from "./idb.js";
import {
  PROTOCOL, SCHEMA_VERSION, MAX_BATCH, classify, deadLetter, handleGap, nextBatch, recordResults,
} from "./outbox.js";
import { applyPull } from "./replica.js";
import { uploadPhotos } from "./photos.js";

const MIN_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 5 * 60 * 1000;
const POLL_MS = 45 * 1000;

export function backoffDelay(previousMs, retryAfter = null, random = Math.random) {
  const base = previousMs ? Math.min(MAX_BACKOFF_MS, previousMs * 2) : MIN_BACKOFF_MS;
  const jittered = base * (0.8 + 0.4 * random());
  return { base, delay: Math.max(jittered, retryAfter ?? 0) };
}

export class SyncEngine {
  constructor(db, { onChange = () => {}, fetchImpl = request } = {}) {
    this.db = db;
    this.onChange = onChange;
    this.request = fetchImpl;
    this.running = null;
    this.again = false;
    this.backoffMs = 0;
    this.timer = null;
    this.state = "idle"; // idle | syncing | offline | error | signed_out | upgrade
    this.progress = new Map(); // photo_id → {offset, length}
    // the photo lane
    this.photoRunning = null;
    this.photoAgain = false;
    this.photoBackoffMs = 0;
    this.photoTimer = null;
    this.photoState = "idle"; // idle | uploading | waiting (backoff)
    this.current = null; // the photo being sent: {photo_id, offset, length}
  }

  async envelope() {
    return {
      protocol: PROTOCOL,
      schema_version: SCHEMA_VERSION,
      client_id: await getMeta(this.db, "client_id"),
    };
  }

  /** Sync now (coalesced: a call during a sync runs one more round after it). */
  sync() {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.round();
        } while (this.again);
      } finally {
        this.running = null;
      }
    })();
    return this.running;
  }

  schedule(ms) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.sync(), ms);
  }

  fail(state, retryAfter = null) {
    this.state = state;
    if (state === "offline" || state === "error") {
      const { base, delay } = backoffDelay(this.backoffMs, retryAfter);
      this.backoffMs = base;
      this.schedule(delay);
    }
    this.onChange();
    return state;
  }

  async round() {
    const token = await getMeta(this.db, "token");
    if (!token) return this.fail("signed_out");
    this.state = "syncing";
    this.onChange();
    const pushed = await this.push(token);
    if (pushed !== "ok") return pushed;
    const pulled = await this.pull(token);
    if (pulled !== "ok") return pulled;
    this.backoffMs = 0;
    this.state = "idle";
    await setMeta(this.db, { last_sync_at: new Date().toISOString() });
    this.schedule(POLL_MS);
    this.onChange("status");
    this.photos(); // the photo lane runs on its own; this never waits for it
    return "ok";
  }

  /** Is the mutation lane busy? The photo lane yields to it between chunks. */
  async yieldToMutations() {
    while (this.running) {
      try {
        await this.running;
      } catch {
        /* the mutation lane reports its own failures */
      }
    }
  }

  /** Upload the photos the server does not hold yet (coalesced, one at a time). */
  photos() {
    if (this.photoRunning) {
      this.photoAgain = true;
      return this.photoRunning;
    }
    clearTimeout(this.photoTimer);
    this.photoRunning = (async () => {
      try {
        do {
          this.photoAgain = false;
          await this.photoRound();
        } while (this.photoAgain);
      } finally {
        this.photoRunning = null;
        this.current = null;
        this.onChange("status");
      }
    })();
    return this.photoRunning;
  }

  async photoRound() {
    const token = await getMeta(this.db, "token");
    if (!token) return "signed_out";
    this.photoState = "uploading";
    const uploaded = await uploadPhotos(this.db, token, this.request, {
      onProgress: (id, offset, length) => {
        this.progress.set(id, { offset, length });
        this.current = offset >= length ? null : { photo_id: id, offset, length };
        this.onChange(offset >= length ? "data" : "progress");
      },
      beforeChunk: () => this.yieldToMutations(),
    });
    this.current = null;
    if (uploaded === "signed_out") {
      this.photoState = "idle";
      if (!this.running) await this.signedOut("token_revoked");
      return uploaded;
    }
    if (uploaded !== "ok") {
      const { base, delay } = backoffDelay(this.photoBackoffMs);
      this.photoBackoffMs = base;
      this.photoState = "waiting";
      clearTimeout(this.photoTimer);
      this.photoTimer = setTimeout(() => this.photos(), delay);
      this.onChange("status");
      return uploaded;
    }
    this.photoBackoffMs = 0;
    this.photoState = "idle";
    return "ok";
  }

  async signedOut(code) {
    await setMeta(this.db, { token: null, auth_error: code || "not_authenticated" });
    clearTimeout(this.timer);
    return this.fail("signed_out");
  }

  async push(token) {
    let limit = MAX_BATCH;
    for (let round = 0; round < 10000; round++) {
      const batch = await nextBatch(this.db, limit);
      if (!batch.length) return "ok";
      const body = {
        ...(await this.envelope()),
        mutations: batch.map(({ id, name, base_version, client_ts, args }) => ({ id, name, base_version, client_ts, args })),
      };
      const answer = await this.request("POST", "/sync/v1/push", { body, token });
      const code = answer.body?.code;
      switch (classify(answer.status, code)) {
        case "ok":
          await recordResults(this.db, batch, answer.body);
          limit = MAX_BATCH;
          this.onChange("data");
          break;
        case "gap":
          await handleGap(this.db, answer.body.last_mutation_id);
          break;
        case "signed_out":
          return this.signedOut(code);
        case "split":
          if (batch.length === 1) await deadLetter(this.db, batch[0], { status: answer.status, code });
          else limit = Math.max(1, Math.floor(batch.length / 2));
          break;
        case "upgrade":
          await setMeta(this.db, { upgrade: true });
          return this.fail("upgrade");
        case "client_id_taken":
          await handleGap(this.db, -1); // a new client_id, pending entries renumbered from 1
          break;
        case "bisect":
          if (batch.length > 1) limit = 1;
          else {
            await deadLetter(this.db, batch[0], { status: answer.status, code, detail: answer.body?.detail ?? null });
            limit = MAX_BATCH;
            this.onChange("data");
          }
          break;
        default:
          return this.fail(answer.status === 0 ? "offline" : "error", retryAfterMs(answer.headers));
      }
    }
    return "ok";
  }

  async pull(token) {
    const envelope = await this.envelope();
    let cookie = await getMeta(this.db, "cookie");
    const patch = [];
    let first = null;
    let last = null;
    for (let page = 0; page < 1000; page++) {
      const answer = await this.request("POST", "/sync/v1/pull", { body: { ...envelope, cookie }, token });
      if (answer.status === 401) return this.signedOut(answer.body?.code);
      if (answer.status === 400 && answer.body?.code === "protocol_unsupported") {
        await setMeta(this.db, { upgrade: true });
        return this.fail("upgrade");
      }
      if (answer.status === 403 && answer.body?.code === "client_id_taken") {
        await handleGap(this.db, -1);
        this.again = true;
        return "retry";
      }
      if (answer.status !== 200) return this.fail(answer.status === 0 ? "offline" : "error", retryAfterMs(answer.headers));
      if (answer.body.upgrade) {
        await setMeta(this.db, { upgrade: true });
        return this.fail("upgrade");
      }
      first = first || answer.body;
      last = answer.body;
      patch.push(...answer.body.patch);
      cookie = answer.body.cookie;
      if (!answer.body.has_more) break;
    }
    await applyPull(this.db, {
      patch,
      cookie: last.cookie,
      last_mutation_id: first.last_mutation_id,
      reset: first.reset,
      server_time: last.server_time,
    });
    await setMeta(this.db, { upgrade: null });
    this.onChange("data");
    return "ok";
  }
}
