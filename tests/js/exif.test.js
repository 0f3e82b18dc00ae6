// EXIF carried into the upload copy (pwa/js/exif.js) and chunk sizing (pwa/js/photos.js).
import { test } from "node:test";
import assert from "node:assert/strict";

import { exifSegment, resetOrientation, insertExif } from "../../pwa/js/exif.js";
import { nextChunkBytes, MIN_CHUNK_BYTES, MAX_CHUNK_BYTES, FIRST_CHUNK_BYTES } from "../../pwa/js/photos.js";

function exifWithOrientation(value, little = true) {
  // TIFF header + IFD0 with one entry (Orientation, SHORT, 1, value) + next IFD 0
  const tiff = new Uint8Array(8 + 2 + 12 + 4);
  const v = new DataView(tiff.buffer);
  tiff.set(little ? [0x49, 0x49] : [0x4d, 0x4d], 0);
  v.setUint16(2, 42, little);
  v.setUint32(4, 8, little);
  v.setUint16(8, 1, little);
  v.setUint16(10, 0x0112, little);
  v.setUint16(12, 3, little);
  v.setUint32(14, 1, little);
  v.setUint16(18, value, little);
  const payload = new Uint8Array([0x45, 0x78, 0x69, 0x66, 0, 0, ...tiff]);
  const length = payload.length + 2;
  return new Uint8Array([0xff, 0xe1, length >> 8, length & 0xff, ...payload]);
}

const APP0 = [0xff, 0xe0, 0, 4, 0x4a, 0x46];
const SCAN = [0xff, 0xda, 0, 2, 1, 2, 3, 0xff, 0xd9];

function orientationOf(segment, little = true) {
  return new DataView(segment.buffer, segment.byteOffset).getUint16(10 + 18, little);
}

for (const little of [true, false]) {
  test(`the camera's EXIF is found, its orientation reset to 1 (${little ? "II" : "MM"})`, () => {
    const exif = exifWithOrientation(6, little);
    const camera = new Uint8Array([0xff, 0xd8, ...APP0, ...exif, ...SCAN]);
    const found = exifSegment(camera);
    assert.deepEqual(found, exif);
    const upright = resetOrientation(found);
    assert.equal(orientationOf(upright, little), 1);
    assert.equal(orientationOf(found, little), 6, "the camera's segment is not changed in place");
  });
}

test("insertExif puts the segment right after SOI and drops the copy's own EXIF", () => {
  const camera = resetOrientation(exifWithOrientation(8));
  const own = exifWithOrientation(1);
  const copy = new Uint8Array([0xff, 0xd8, ...APP0, ...own, ...SCAN]);
  const out = insertExif(copy, camera);
  assert.deepEqual(out.subarray(0, 2), new Uint8Array([0xff, 0xd8]));
  assert.deepEqual(out.subarray(2, 2 + camera.length), camera);
  assert.deepEqual([...out.subarray(2 + camera.length)], [...APP0, ...SCAN]);
  assert.deepEqual(exifSegment(out), camera);
});

test("no EXIF, or not a JPEG: nothing found, nothing inserted", () => {
  assert.equal(exifSegment(new Uint8Array([0xff, 0xd8, ...APP0, ...SCAN])), null);
  assert.equal(exifSegment(new Uint8Array([0x89, 0x50, 0x4e, 0x47])), null);
  const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47]);
  assert.equal(insertExif(png, exifWithOrientation(1)), png);
});

test("chunks last about 4 s on the measured link, within bounds", () => {
  assert.equal(nextChunkBytes(0, 0), FIRST_CHUNK_BYTES);
  assert.equal(nextChunkBytes(64 * 1024, 100_000), MIN_CHUNK_BYTES); // a crawling link
  assert.equal(nextChunkBytes(8 * 1024 * 1024, 100), MAX_CHUNK_BYTES); // Wi-Fi
  const slow3g = nextChunkBytes(64 * 1024, 1300); // ~50 KB/s
  assert.ok(slow3g >= 160 * 1024 && slow3g <= 256 * 1024, String(slow3g));
});
