// Photo evidence on the crew device: capture (bytes hashed on the device, location from the
// Geolocation API at the moment of capture: phone browsers strip GPS from files), the
// attach_photo mutation queued in the same IndexedDB transaction as the bytes, and the resumable
// upload (server/photos: POST /api/v1/photos/uploads, PATCH chunks at Upload-Offset). The bytes
// stay on the device until the server confirms it holds that exact sha256.
// What is uploaded is a smaller upright copy with the camera's EXIF (shrink.js, docs/adr/0062);
// the camera file stays on the phone next to it until the copy is confirmed.

import { transaction, getAll, get, put } from "./idb.js";
import { enqueue, newUuid } from "./outbox.js";

// Chunks are sized to take about CHUNK_SECONDS on the measured link, so that the photo lane
// gives way to a push or a pull often (between chunks), even on Slow 3G.
export const MIN_CHUNK_BYTES = 32 * 1024;
export const MAX_CHUNK_BYTES = 1024 * 1024;
export const FIRST_CHUNK_BYTES = 64 * 1024;
const CHUNK_SECONDS = 4;

export function nextChunkBytes(sentBytes, elapsedMs) {
  if (!(elapsedMs > 0) || !(sentBytes > 0)) return FIRST_CHUNK_BYTES;
  const perSecond = (sentBytes * 1000) / elapsedMs;
  const size = Math.round((perSecond * CHUNK_SECONDS) / 16384) * 16384;
  return Math.max(MIN_CHUNK_BYTES, Math.min(MAX_CHUNK_BYTES, size));
}

let worker = null;
let seq = 0;
const waiting = new Map();

function shrinkInWorker(blob, timeoutMs = 60000) {
  if (typeof Worker === "undefined" || typeof OffscreenCanvas === "undefined") return Promise.reject(new Error("no_worker"));
  if (!worker) {
    worker = new Worker(new URL("./shrink-worker.js", import.meta.url), { type: "module" });
    worker.onmessage = ({ data }) => {
      const done = waiting.get(data.id);
      waiting.delete(data.id);
      if (done) (data.error ? done.reject(new Error(data.error)) : done.resolve(data));
    };
    worker.onerror = () => {
      for (const done of waiting.values()) done.reject(new Error("worker_failed"));
      waiting.clear();
      worker = null;
    };
  }
  const id = ++seq;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { waiting.delete(id); reject(new Error("worker_timeout")); }, timeoutMs);
    waiting.set(id, {
      resolve: (v) => { clearTimeout(timer); resolve(v); },
      reject: (e) => { clearTimeout(timer); reject(e); },
    });
    worker.postMessage({ id, blob });
  });
}

/** The upload copy and thumbnail: in a worker, else on the page, else the camera file as is. */
export async function uploadCopy(blob) {
  try {
    return await shrinkInWorker(blob);
  } catch {
    try {
      const { shrinkPhoto } = await import("./shrink.js");
      return await shrinkPhoto(blob);
    } catch {
      return { upload: blob, thumb: null, shrunk: false }; // not decodable here (e.g. HEIC): send as taken
    }
  }
}

export async function sha256Hex(blob) {
  const digest = await crypto.subtle.digest("SHA-256", await blob.arrayBuffer());
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export function currentPosition(timeoutMs = 8000) {
  return new Promise((resolve) => {
    if (!globalThis.navigator?.geolocation) return resolve(null);
    navigator.geolocation.getCurrentPosition(
      (p) => resolve({ lat: p.coords.latitude, lon: p.coords.longitude, accuracy_m: p.coords.accuracy }),
      () => resolve(null),
      { enableHighAccuracy: true, timeout: timeoutMs, maximumAge: 30000 },
    );
  });
}

/** Queue a photo taken for a work order: bytes + mutation + optimistic view, one transaction. */
export async function addPhoto(db, order, file, position, kind = "after") {
  // Read the bytes into memory first: a Blob backed by a picked file may not outlive the page.
  const camera = new Blob([await file.arrayBuffer()], { type: file.type || "image/jpeg" });
  const copy = await uploadCopy(camera);
  const bytes = copy.upload;
  const sha256 = await sha256Hex(bytes);
  const photoId = newUuid();
  const capturedAt = new Date().toISOString();
  const args = { work_order_id: order.id, photo_id: photoId, sha256, kind, captured_at: capturedAt };
  if (position) Object.assign(args, { lat: position.lat, lon: position.lon, accuracy_m: position.accuracy_m });
  const record = {
    photo_id: photoId, work_order_id: order.id, sha256, blob: bytes, size: bytes.size,
    type: bytes.type, state: "pending", upload_id: null, offset: 0, captured_at: capturedAt,
    // the camera file stays on the phone until the copy is confirmed; the thumbnail stays for display
    original: copy.shrunk ? camera : null, original_size: camera.size, thumb: copy.thumb || null,
  };
  await enqueue(db, { name: "workorder.attach_photo@1", args, base_version: order.version ?? null }, { photos: [record] });
  return record;
}

export function readPhotos(db) {
  return transaction(db, ["photos"], "readonly", ({ photos }) => getAll(photos));
}

function savePhoto(db, photoId, changes) {
  return transaction(db, ["photos"], "readwrite", async ({ photos }) => {
    const record = await get(photos, photoId);
    if (record) await put(photos, { ...record, ...changes });
  });
}

/**
 * Upload every photo the server does not confirm yet. Returns "ok", "offline" (try again later:
 * the offset is kept, the next call resumes there) or "signed_out".
 */
export async function uploadPhotos(db, token, send, { onProgress = () => {}, beforeChunk = async () => {} } = {}) {
  const records = (await readPhotos(db)).filter((r) => r.state !== "confirmed" && r.state !== "refused")
    .sort((a, b) => String(a.captured_at).localeCompare(String(b.captured_at)));
  for (const record of records) {
    await beforeChunk();
    const fresh = await transaction(db, ["photos"], "readonly", ({ photos }) => get(photos, record.photo_id));
    if (!fresh || fresh.state === "confirmed" || fresh.state === "refused") continue;
    const result = await uploadOne(db, token, send, fresh, onProgress, beforeChunk);
    if (result !== "ok") return result;
  }
  return "ok";
}

/** What is still only on the phone: {count, bytes} of photos the server has not confirmed. */
export function waitingPhotos(records) {
  const waiting = records.filter((r) => r.state !== "confirmed" && r.state !== "refused");
  return { count: waiting.length, bytes: waiting.reduce((n, r) => n + (r.size || 0), 0) };
}

async function uploadOne(db, token, send, record, onProgress, beforeChunk) {
  const created = await send("POST", "/api/v1/photos/uploads", { body: { sha256: record.sha256, length: record.size }, token });
  if (created.status === 401) return "signed_out";
  if (created.status >= 400 && created.status < 500 && created.status !== 429) {
    // Refused (too large, not an image…): kept on the device and shown to the crew, never dropped.
    await savePhoto(db, record.photo_id, { state: "refused", error: created.body?.code ?? String(created.status) });
    return "ok";
  }
  if (created.status !== 200 && created.status !== 201) return "offline";
  let { id: uploadId, offset, complete } = created.body;
  await savePhoto(db, record.photo_id, { upload_id: uploadId, offset, state: "uploading" });
  onProgress(record.photo_id, offset, record.size);
  let chunkBytes = FIRST_CHUNK_BYTES;
  while (!complete && uploadId) {
    await beforeChunk(); // a push or pull waiting goes first
    const chunk = record.blob.slice(offset, Math.min(record.size, offset + chunkBytes));
    const started = Date.now();
    const answer = await send("PATCH", `/api/v1/photos/uploads/${uploadId}`, {
      body: chunk, raw: true, token, timeoutMs: 15000 + chunk.size / 4, // ≥ 4 KB/s or it counts as a cut
      headers: { "Upload-Offset": String(offset), "Content-Type": "application/offset+octet-stream" },
    });
    if (answer.status === 401) return "signed_out";
    if (answer.status === 409) {
      offset = Number(answer.headers.get("upload-offset") ?? answer.body?.offset ?? offset);
    } else if (answer.status === 200) {
      chunkBytes = nextChunkBytes(answer.body.offset - offset, Date.now() - started);
      ({ offset, complete } = answer.body);
    } else {
      return "offline"; // a cut: the server keeps what it received; resume from its offset later
    }
    await savePhoto(db, record.photo_id, { offset });
    onProgress(record.photo_id, offset, record.size);
  }
  // Keep the bytes until the server confirms it holds this exact sha256: an answer saying
  // complete (stored and verified, docs/photos.md) does; otherwise ask (one round trip less per
  // photo on a slow link when the last chunk's answer said so).
  if (!complete) {
    const check = await send("HEAD", `/api/v1/photos/${record.sha256}`, { token });
    if (check.status === 401) return "signed_out";
    if (check.status !== 200) return "offline";
  }
  await savePhoto(db, record.photo_id, { state: "confirmed", blob: null, original: null, offset: record.size });
  onProgress(record.photo_id, record.size, record.size);
  return "ok";
}
