import type { ByteSource } from "../../src/formats/io/byte-source.js";
import { EndOfFileError } from "../../src/formats/io/errors.js";
import { TensorOut, type StorageOut } from "../../src/formats/torch/pickle/values.js";
import { ZipWriter } from "../../src/formats/torch/zip/writer.js";
import type { Dtype } from "../../src/model/tensor.js";

/** A ByteSource over bytes in memory. */
export function memorySource(bytes: Uint8Array, name = "memory.pt"): ByteSource {
  return {
    name,
    size: bytes.byteLength,
    read: async (offset: number, length: number) => {
      if (offset < 0 || offset + length > bytes.byteLength) {
        throw new EndOfFileError(name, offset, length, Math.max(0, bytes.byteLength - offset));
      }
      return bytes.slice(offset, offset + length);
    },
    close: async () => undefined,
  };
}

/** A zip archive built in memory with our ZipWriter (torch layout), e.g. to craft broken checkpoints. */
export async function zipInMemory(records: ReadonlyArray<readonly [string, Uint8Array]>, forceZip64 = false): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const zip = new ZipWriter({ write: async (b) => void chunks.push(b.slice()) }, { forceZip64 });
  for (const [name, data] of records) {
    await zip.add(name, data.byteLength, data);
  }
  await zip.finish();
  return new Uint8Array(Buffer.concat(chunks));
}

export const ascii = (text: string): Uint8Array => new TextEncoder().encode(text);

/** A storage that yields `bytes` in chunks of at most `chunk` bytes. */
export function storageOf(dtype: Dtype, numel: number, bytes: Uint8Array, chunk = 1 << 20): StorageOut {
  return {
    dtype,
    numel,
    data: async function* () {
      for (let at = 0; at < bytes.byteLength; at += chunk) {
        yield bytes.slice(at, at + chunk);
      }
    },
  };
}

/** Little-endian bytes of `values` in `dtype` (bf16 by truncating float32, as torch does for exact values). */
export function encodeValues(dtype: Dtype, values: readonly number[]): Uint8Array {
  const n = values.length;
  switch (dtype) {
    case "F32":
      return new Uint8Array(Float32Array.from(values).buffer);
    case "F64":
      return new Uint8Array(Float64Array.from(values).buffer);
    case "I64":
      return new Uint8Array(BigInt64Array.from(values.map((v) => BigInt(v))).buffer);
    case "I32":
      return new Uint8Array(Int32Array.from(values).buffer);
    case "I16":
      return new Uint8Array(Int16Array.from(values).buffer);
    case "I8":
      return new Uint8Array(Int8Array.from(values).buffer);
    case "U8":
    case "BOOL":
      return Uint8Array.from(values);
    case "BF16": {
      const f = new Uint8Array(Float32Array.from(values).buffer);
      return Uint8Array.from({ length: n * 2 }, (_, i) => f[Math.floor(i / 2) * 4 + 2 + (i % 2)] ?? 0);
    }
    case "F16":
      return new Uint8Array(Uint16Array.from(values, toHalf).buffer);
    default:
      throw new Error(`encodeValues: ${dtype} not supported in tests`);
  }
}

/** float -> IEEE half for small exact values (integers and simple fractions). */
function toHalf(value: number): number {
  if (value === 0) {
    return Object.is(value, -0) ? 0x8000 : 0;
  }
  const sign = value < 0 ? 0x8000 : 0;
  const abs = Math.abs(value);
  const exp = Math.floor(Math.log2(abs));
  const mantissa = Math.round((abs / 2 ** exp - 1) * 1024);
  return sign | ((exp + 15) << 10) | mantissa;
}

/** A contiguous tensor of `values` with its own storage. */
export function tensorOf(dtype: Dtype, shape: readonly number[], values: readonly number[]): TensorOut {
  return new TensorOut(storageOf(dtype, values.length, encodeValues(dtype, values)), shape);
}

/** torch dtype names for the dtypes torch 1.13 supports. */
export const TORCH_NAMES: Partial<Record<Dtype, string>> = {
  BF16: "bfloat16",
  F16: "float16",
  F32: "float32",
  F64: "float64",
  I64: "int64",
  I32: "int32",
  I16: "int16",
  I8: "int8",
  U8: "uint8",
  BOOL: "bool",
};

/** Sample values that every dtype represents exactly. */
export function sampleValues(dtype: Dtype, count: number): number[] {
  return Array.from({ length: count }, (_, i) => {
    if (dtype === "BOOL") {
      return i % 3 === 0 ? 1 : 0;
    }
    if (dtype === "U8") {
      return (i * 7) % 256;
    }
    return (i % 2 === 0 ? 1 : -1) * ((i * 3) % 100) * (dtype.startsWith("F") || dtype === "BF16" ? 0.5 : 1);
  });
}

/**
 * A ByteSource of `size` bytes that are zero except for `regions`: lets the zip reader walk
 * offsets beyond 4 GiB without a 4 GiB file.
 */
export function sparseSource(size: number, regions: ReadonlyArray<readonly [number, Uint8Array]>, name = "sparse.pt"): ByteSource {
  return {
    name,
    size,
    read: async (offset: number, length: number) => {
      if (offset < 0 || offset + length > size) {
        throw new EndOfFileError(name, offset, length, Math.max(0, size - offset));
      }
      const out = new Uint8Array(length);
      for (const [at, bytes] of regions) {
        const from = Math.max(at, offset);
        const to = Math.min(at + bytes.byteLength, offset + length);
        if (from < to) {
          out.set(bytes.subarray(from - at, to - at), from - offset);
        }
      }
      return out;
    },
    close: async () => undefined,
  };
}

/** Overwrites bytes of a copy of `bytes` (little-endian u16/u32/u64 or raw). */
export function patch(bytes: Uint8Array, at: number, value: number | bigint | Uint8Array, width: 2 | 4 | 8 = 4): Uint8Array {
  const out = new Uint8Array(bytes);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  if (value instanceof Uint8Array) {
    out.set(value, at);
  } else if (width === 2) {
    view.setUint16(at, Number(value), true);
  } else if (width === 4) {
    view.setUint32(at, Number(value), true);
  } else {
    view.setBigUint64(at, BigInt(value), true);
  }
  return out;
}

/** Offset of the last occurrence of a 4-byte little-endian signature. */
export function lastSignature(bytes: Uint8Array, signature: number): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = bytes.byteLength - 4; i >= 0; i -= 1) {
    if (view.getUint32(i, true) === signature) {
      return i;
    }
  }
  return -1;
}
