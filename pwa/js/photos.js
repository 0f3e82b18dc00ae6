// Photo evidence on the crew device: capture (bytes hashed on the device, location from the
// Geolocation API at the moment of capture: phone browsers strip GPS from files), the
// attach_photo mutation queued in the same IndexedDB transaction as the bytes, and the resumable
// upload (server/photos: POST /api/v1/photos/uploads, PATCH chunks at Upload-Offset). The bytes
// stay on the device until the server confirms it holds that exact sha256.

import { transaction, getAll, get, put } from "./idb.js";
import { enqueue, newUuid } from "./outbox.js";

export const CHUNK_BYTES = 256 * 1024;

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
  const bytes = new Blob([await file.arrayBuffer()], { type: file.type || "image/jpeg" });
  const sha256 = await sha256Hex(bytes);
  const photoId = newUuid();
  const capturedAt = new Date().toISOString();
  const args = { work_order_id: order.id, photo_id: photoId, sha256, kind, captured_at: capturedAt };
  if (position) Object.assign(args, { lat: position.lat, lon: position.lon, accuracy_m: position.accuracy_m });
  const record = {
    photo_id: photoId, work_order_id: order.id, sha256, blob: bytes, size: bytes.size,
    type: bytes.type, state: "pending", upload_id: null, offset: 0, captured_at: capturedAt,
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
export async function uploadPhotos(db, token, send, onProgress) {
  const records = (await readPhotos(db)).filter((r) => r.state !== "confirmed" && r.state !== "refused");
  for (const record of records) {
    const result = await uploadOne(db, token, send, record, onProgress);
    if (result !== "ok") return result;
  }
  return "ok";
}

async function uploadOne(db, token, send, record, onProgress) {
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
  while (!complete && uploadId) {
    const chunk = record.blob.slice(offset, Math.min(record.size, offset + CHUNK_BYTES));
    const answer = await send("PATCH", `/api/v1/photos/uploads/${uploadId}`, {
      body: chunk, raw: true, token,
      headers: { "Upload-Offset": String(offset), "Content-Type": "application/offset+octet-stream" },
    });
    if (answer.status === 401) return "signed_out";
    if (answer.status === 409) {
      offset = Number(answer.headers.get("upload-offset") ?? answer.body?.offset ?? offset);
    } else if (answer.status === 200) {
      ({ offset, complete } = answer.body);
    } else {
      return "offline"; // a cut: the server keeps what it received; resume from its offset later
    }
    await savePhoto(db, record.photo_id, { offset });
    onProgress(record.photo_id, offset, record.size);
  }
  // Keep the bytes until the server confirms it holds this exact sha256.
  const check = await send("HEAD", `/api/v1/photos/${record.sha256}`, { token });
  if (check.status === 401) return "signed_out";
  if (check.status !== 200) return "offline";
  await savePhoto(db, record.photo_id, { state: "confirmed", blob: null, offset: record.size });
  onProgress(record.photo_id, record.size, record.size);
  return "ok";
}
