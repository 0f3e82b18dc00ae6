// The copy of a camera photo the app uploads: upright JPEG, at most 2048 px on its long side,
// about 300–600 KB, with the original's EXIF (capture time, GPS, make, model) carried over and
// its orientation reset (docs/adr/0062). Also a small thumbnail kept on the phone for display.
// Runs in a worker (shrink-worker.js, OffscreenCanvas) or, where the browser has no
// OffscreenCanvas, on the page with a <canvas>.

import { exifSegment, resetOrientation, insertExif } from "./exif.js";

export const MAX_SIDE = 2048;
export const MAX_BYTES = 600 * 1024;
export const THUMB_SIDE = 320;

function canvas(width, height) {
  if (typeof OffscreenCanvas !== "undefined") return new OffscreenCanvas(width, height);
  const el = document.createElement("canvas");
  el.width = width;
  el.height = height;
  return el;
}

function encode(target, quality) {
  if (target.convertToBlob) return target.convertToBlob({ type: "image/jpeg", quality });
  return new Promise((resolve, reject) =>
    target.toBlob((b) => (b ? resolve(b) : reject(new Error("encode_failed"))), "image/jpeg", quality));
}

function draw(bitmap, side) {
  const scale = Math.min(1, side / Math.max(bitmap.width, bitmap.height));
  const width = Math.max(1, Math.round(bitmap.width * scale));
  const height = Math.max(1, Math.round(bitmap.height * scale));
  const target = canvas(width, height);
  const ctx = target.getContext("2d");
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(bitmap, 0, 0, width, height);
  return target;
}

/**
 * {upload: Blob, thumb: Blob, shrunk: bool}. `shrunk` is false when the camera file is already
 * small enough: then it is uploaded as taken.
 */
export async function shrinkPhoto(blob, { maxSide = MAX_SIDE, maxBytes = MAX_BYTES } = {}) {
  const bitmap = await createImageBitmap(blob, { imageOrientation: "from-image" });
  try {
    const thumb = await encode(draw(bitmap, THUMB_SIDE), 0.7);
    const isJpeg = blob.type === "image/jpeg" || blob.type === "";
    if (isJpeg && blob.size <= maxBytes && Math.max(bitmap.width, bitmap.height) <= maxSide) {
      return { upload: blob, thumb, shrunk: false };
    }
    const original = new Uint8Array(await blob.arrayBuffer());
    const exif = exifSegment(original);
    const target = draw(bitmap, maxSide);
    let out = null;
    for (const quality of [0.82, 0.72, 0.62, 0.5, 0.4]) {
      const encoded = new Uint8Array(await (await encode(target, quality)).arrayBuffer());
      out = exif ? insertExif(encoded, resetOrientation(exif)) : encoded;
      if (out.length <= maxBytes) break;
    }
    return { upload: new Blob([out], { type: "image/jpeg" }), thumb, shrunk: true };
  } finally {
    bitmap.close?.();
  }
}
