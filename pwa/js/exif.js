// Carry a camera JPEG's EXIF block (capture time, GPS, make, model…) into the smaller copy the
// app uploads, with the orientation reset to 1 because the copy's pixels are already upright.
// Byte work on Uint8Arrays only, no DOM: runs in the page, a worker and node (tests/js/).
// Why hand-written and not piexifjs: docs/adr/0062.

const SOI = 0xd8;
const SOS = 0xda;
const APP1 = 0xe1;
const EXIF_HEADER = [0x45, 0x78, 0x69, 0x66, 0, 0]; // "Exif\0\0"
const ORIENTATION = 0x0112;

/** The APP1 "Exif" segment of a JPEG (marker, length and payload), or null. */
export function exifSegment(bytes) {
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== SOI) return null;
  let at = 2;
  while (at + 4 <= bytes.length) {
    if (bytes[at] !== 0xff) return null; // not a marker: corrupt, give up
    const marker = bytes[at + 1];
    if (marker === 0xff) { at += 1; continue; } // fill byte
    if (marker === SOS || marker === 0xd9) return null; // image data: no EXIF before it
    if (marker >= 0xd0 && marker <= 0xd7) { at += 2; continue; } // RSTn: no length
    const length = (bytes[at + 2] << 8) | bytes[at + 3];
    if (length < 2 || at + 2 + length > bytes.length) return null;
    if (marker === APP1 && length >= 8 && EXIF_HEADER.every((b, i) => bytes[at + 4 + i] === b)) {
      return bytes.slice(at, at + 2 + length);
    }
    at += 2 + length;
  }
  return null;
}

/** A copy of an EXIF segment with IFD0's Orientation set to 1 (upright); unchanged if absent. */
export function resetOrientation(segment) {
  const out = segment.slice();
  const tiff = 10; // FF E1, length (2), "Exif\0\0"
  if (out.length < tiff + 8) return out;
  const little = out[tiff] === 0x49 && out[tiff + 1] === 0x49; // "II"
  const big = out[tiff] === 0x4d && out[tiff + 1] === 0x4d; // "MM"
  if (!little && !big) return out;
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const u16 = (o) => view.getUint16(o, little);
  const u32 = (o) => view.getUint32(o, little);
  const ifd0 = tiff + u32(tiff + 4);
  if (ifd0 + 2 > out.length) return out;
  const count = u16(ifd0);
  for (let i = 0; i < count; i++) {
    const entry = ifd0 + 2 + i * 12;
    if (entry + 12 > out.length) break;
    if (u16(entry) === ORIENTATION) {
      view.setUint16(entry + 2, 3, little); // type SHORT
      view.setUint32(entry + 4, 1, little); // count 1
      view.setUint16(entry + 8, 1, little); // value 1: upright
      view.setUint16(entry + 10, 0, little);
    }
  }
  return out;
}

/** `jpeg` with `segment` inserted right after its SOI (any EXIF it had is dropped first). */
export function insertExif(jpeg, segment) {
  if (!segment || jpeg.length < 2 || jpeg[0] !== 0xff || jpeg[1] !== SOI) return jpeg;
  let rest = jpeg.subarray(2);
  const own = exifSegment(jpeg);
  if (own) {
    const start = indexOfSegment(jpeg, own);
    rest = concat(jpeg.subarray(2, start), jpeg.subarray(start + own.length));
  }
  return concat(new Uint8Array([0xff, SOI]), segment, rest);
}

function indexOfSegment(bytes, segment) {
  outer: for (let i = 2; i + segment.length <= bytes.length; i++) {
    for (let j = 0; j < 12 && j < segment.length; j++) if (bytes[i + j] !== segment[j]) continue outer;
    return i;
  }
  return -1;
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
