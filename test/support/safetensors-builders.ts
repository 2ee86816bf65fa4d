import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { TensorSpec } from "../../src/model/tensor.js";
import type { ByteSource } from "../../src/formats/io/byte-source.js";
import { EndOfFileError } from "../../src/formats/io/errors.js";

/** An in-memory ByteSource that records every read, to prove reads stay within a range. */
export class MemorySource implements ByteSource {
  readonly reads: { offset: number; length: number }[] = [];
  closed = false;

  constructor(
    readonly name: string,
    private readonly bytes: Uint8Array,
  ) {}

  get size(): number {
    return this.bytes.byteLength;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    this.reads.push({ offset, length });
    if (offset < 0 || offset + length > this.bytes.byteLength) {
      throw new EndOfFileError(this.name, offset, length, Math.max(0, this.bytes.byteLength - offset));
    }
    return this.bytes.slice(offset, offset + length);
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

/** One header entry, as a plain object. */
export function entry(dtype: string, shape: readonly number[], begin: number, end: number): Record<string, unknown> {
  return { dtype, shape, data_offsets: [begin, end] };
}

export interface CraftOptions {
  /** The header: an object (JSON.stringify'd) or the exact JSON text. */
  readonly header: Record<string, unknown> | string;
  /** The data buffer, or its length (filled with a counter). */
  readonly data?: Uint8Array | number;
  /** Overrides the u64 header length written in the prefix. */
  readonly declaredLength?: bigint;
  /** Pad the JSON with spaces to a multiple of 8 (default true). */
  readonly pad?: boolean;
}

/** A safetensors file from parts, valid or deliberately broken. */
export function craftSafetensors(options: CraftOptions): Uint8Array {
  const text = typeof options.header === "string" ? options.header : JSON.stringify(options.header);
  let json = new TextEncoder().encode(text);
  if (options.pad ?? true) {
    const padded = Math.ceil((8 + json.byteLength) / 8) * 8 - 8;
    const withPad = new Uint8Array(padded).fill(0x20);
    withPad.set(json);
    json = withPad;
  }
  const data = typeof options.data === "number" ? counterBytes(options.data) : (options.data ?? new Uint8Array(0));
  const out = new Uint8Array(8 + json.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, options.declaredLength ?? BigInt(json.byteLength), true);
  out.set(json, 8);
  out.set(data, 8 + json.byteLength);
  return out;
}

/** 0, 1, 2, ... 255, 0, ... */
export function counterBytes(length: number, start = 0): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    out[i] = (start + i) & 0xff;
  }
  return out;
}

export async function writeBytes(dir: string, name: string, bytes: Uint8Array): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, bytes);
  return path;
}

/** Mulberry32: a small seeded PRNG for property tests. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An async iterable yielding `bytes` in random-sized chunks. */
export async function* chunked(bytes: Uint8Array, random: () => number): AsyncIterable<Uint8Array> {
  let at = 0;
  while (at < bytes.byteLength) {
    const size = 1 + Math.floor(random() * Math.max(1, bytes.byteLength / 2));
    yield bytes.slice(at, at + size);
    at += size;
  }
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

// Golden bytes, written by hand.

export const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));

/** The one-tensor file of torch-format.md §5.1, written by the reference writer (0.8.0). */
export const ONE_TENSOR_AB = [
  ...[0x38, 0, 0, 0, 0, 0, 0, 0],
  ...ascii('{"ab":{"dtype":"BF16","shape":[1],"data_offsets":[0,2]}}'),
];

/** A two-tensor file written by hand: F32[2] = [1, -2] and a 0-dim I64 = -7. */
export const TWO_TENSOR_JSON =
  '{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"n":{"dtype":"I64","shape":[],"data_offsets":[8,16]}}';
export const TWO_TENSOR_HEADER = [...[0x90, 0, 0, 0, 0, 0, 0, 0], ...ascii(TWO_TENSOR_JSON), ...ascii("      ")];
export const TWO_TENSOR_DATA = [0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0, 0xf9, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
export const TWO_TENSOR_SPECS: TensorSpec[] = [
  { name: "w", dtype: "F32", shape: [2] },
  { name: "n", dtype: "I64", shape: [] },
];

/** The whole two-tensor golden file. */
export const TWO_TENSOR_FILE = new Uint8Array([...TWO_TENSOR_HEADER, ...TWO_TENSOR_DATA]);
