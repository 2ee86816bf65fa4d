import { ConvertError } from "../errors.js";
import { dtypeBytes, type Dtype } from "../model/tensor.js";

export class UnsupportedCastError extends ConvertError {
  readonly code = "engine.unsupported-cast";
  constructor(
    readonly tensor: string,
    readonly from: Dtype,
    readonly to: Dtype,
  ) {
    super(`tensor "${tensor}": cannot convert ${from} to ${to}; --dtype converts between BF16, F16, F32 and F64 only`);
  }
}

const FLOATS: ReadonlySet<Dtype> = new Set<Dtype>(["BF16", "F16", "F32", "F64"]);

export function canCast(from: Dtype, to: Dtype): boolean {
  return from === to || (FLOATS.has(from) && FLOATS.has(to));
}

/** Converts little-endian element bytes; round-to-nearest-even as torch's .to() does. */
export function castBytes(bytes: Uint8Array, from: Dtype, to: Dtype): Uint8Array {
  if (from === to) {
    return bytes;
  }
  return encode(decode(bytes, from), to);
}

function aligned(bytes: Uint8Array, size: number): Uint8Array {
  return bytes.byteOffset % size === 0 ? bytes : bytes.slice();
}

function decode(bytes: Uint8Array, dtype: Dtype): Float32Array | Float64Array {
  const b = aligned(bytes, dtypeBytes(dtype));
  const n = b.byteLength / dtypeBytes(dtype);
  switch (dtype) {
    case "F32":
      return new Float32Array(b.buffer, b.byteOffset, n);
    case "F64":
      return new Float64Array(b.buffer, b.byteOffset, n);
    case "BF16": {
      const src = new Uint16Array(b.buffer, b.byteOffset, n);
      const out = new Uint32Array(n);
      for (let i = 0; i < n; i++) {
        out[i] = (src[i] as number) << 16;
      }
      return new Float32Array(out.buffer);
    }
    case "F16": {
      const src = new Uint16Array(b.buffer, b.byteOffset, n);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        out[i] = halfToFloat(src[i] as number);
      }
      return out;
    }
    default:
      throw new Error(`internal: decode ${dtype}`);
  }
}

function encode(values: Float32Array | Float64Array, dtype: Dtype): Uint8Array {
  const n = values.length;
  switch (dtype) {
    case "F32":
      return new Uint8Array(Float32Array.from(values).buffer);
    case "F64":
      return new Uint8Array(Float64Array.from(values).buffer);
    case "BF16": {
      const f32 = values instanceof Float32Array ? values : Float32Array.from(values);
      const bits = new Uint32Array(f32.buffer, f32.byteOffset, n);
      const out = new Uint16Array(n);
      for (let i = 0; i < n; i++) {
        const x = bits[i] as number;
        out[i] = (x & 0x7fffffff) > 0x7f800000 ? ((x >>> 16) | 0x40) & 0xffff : ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
      }
      return new Uint8Array(out.buffer);
    }
    case "F16": {
      const out = new Uint16Array(n);
      for (let i = 0; i < n; i++) {
        out[i] = floatToHalf(values[i] as number);
      }
      return new Uint8Array(out.buffer);
    }
    default:
      throw new Error(`internal: encode ${dtype}`);
  }
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) {
    return sign * frac * 2 ** -24;
  }
  if (exp === 31) {
    return frac === 0 ? sign * Infinity : Number.NaN;
  }
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** IEEE binary32 -> binary16 with round-to-nearest-even (via the float32 bits). */
function floatToHalf(value: number): number {
  F32[0] = value;
  const x = U32[0] as number;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) {
    return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);
  }
  const e = exp - 127 + 15;
  if (e >= 31) {
    return sign | 0x7c00;
  }
  if (e <= 0) {
    if (e < -10) {
      return sign;
    }
    const m = mant | 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = m & ((1 << shift) - 1);
    let r = m >>> shift;
    if (rest > half || (rest === half && (r & 1) === 1)) {
      r += 1;
    }
    return sign | r;
  }
  let r = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (r & 1) === 1)) {
    r += 1;
  }
  return sign | r;
}
