import * as zlib from "node:zlib";

/**
 * Standard CRC-32 (poly 0xEDB88320), streaming: crc32(b, crc32(a)) === crc32(a ++ b).
 * Uses node:zlib's native crc32 (Node >= 20.15) and a table otherwise.
 */
type Crc32Fn = (data: Uint8Array, value?: number) => number;

const native: unknown = (zlib as Record<string, unknown>)["crc32"];

let table: Uint32Array | undefined;

function makeTable(): Uint32Array {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n += 1) {
    let c = n;
    for (let k = 0; k < 8; k += 1) {
      c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    }
    t[n] = c >>> 0;
  }
  return t;
}

/** The table-driven version; exported so tests can compare it with the native one. */
export function crc32Portable(data: Uint8Array, value = 0): number {
  table ??= makeTable();
  let c = (value ^ 0xffffffff) >>> 0;
  for (let i = 0; i < data.byteLength; i += 1) {
    c = (table[(c ^ (data[i] ?? 0)) & 0xff] ?? 0) ^ (c >>> 8);
  }
  return (c ^ 0xffffffff) >>> 0;
}

export const crc32: Crc32Fn = typeof native === "function" ? (native as Crc32Fn) : crc32Portable;
