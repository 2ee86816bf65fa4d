/**
 * Python ints as LONG1/LONG4 payloads: minimal two's complement, little-endian
 * (CPython pickle.encode_long / decode_long).
 */

export function encodeLong(value: bigint): Uint8Array {
  if (value === 0n) {
    return new Uint8Array(0);
  }
  const magnitude = value < 0n ? -value : value;
  const bitLength = magnitude.toString(2).length;
  let length = (bitLength >> 3) + 1;
  let twos = value < 0n ? (1n << BigInt(length * 8)) + value : value;
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i += 1) {
    out[i] = Number(twos & 0xffn);
    twos >>= 8n;
  }
  if (value < 0n && length > 1 && out[length - 1] === 0xff && ((out[length - 2] ?? 0) & 0x80) !== 0) {
    length -= 1;
  }
  return out.subarray(0, length);
}

export function decodeLong(bytes: Uint8Array): bigint {
  if (bytes.byteLength === 0) {
    return 0n;
  }
  let hex = "";
  for (let i = bytes.byteLength - 1; i >= 0; i -= 1) {
    hex += (bytes[i] ?? 0).toString(16).padStart(2, "0");
  }
  let value = BigInt(`0x${hex}`);
  const last = bytes[bytes.byteLength - 1];
  if (last !== undefined && (last & 0x80) !== 0) {
    value -= 1n << BigInt(bytes.byteLength * 8);
  }
  return value;
}

/** A Python int as a JS value: a number when it is a safe integer, else a bigint. */
export function intValue(value: bigint): number | bigint {
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
}
