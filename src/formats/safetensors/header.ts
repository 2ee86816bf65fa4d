import { dtypeBytes, isDtype, type Dtype, type StoredTensor, type TensorSpec } from "../../model/tensor.js";
import {
  BadEntryError,
  BadJsonError,
  BadMetadataError,
  ByteLengthMismatchError,
  DuplicateTensorError,
  HeaderPastEndError,
  HeaderTooLargeError,
  OffsetGapError,
  OffsetOverlapError,
  TrailingBytesError,
  TruncatedFileError,
  UnknownDtypeError,
} from "./errors.js";
import { LENGTH_PREFIX_BYTES, MAX_HEADER_BYTES, METADATA_KEY, REFERENCE_DTYPE_ORDER } from "./spec.js";

/** The validated content of a header: tensors in data-offset order, and the metadata map. */
export interface ParsedHeader {
  tensors: StoredTensor[];
  metadata: Record<string, string>;
}

/** A header entry whose fields have the right kinds, before the tiling check. */
interface Entry extends TensorSpec {
  readonly begin: number;
  readonly end: number;
}

/**
 * Reads N from the 8-byte prefix (offset 0, u64 LE) and checks it against MAX_HEADER_BYTES and
 * the file size before anything is allocated for it.
 */
export function decodeHeaderLength(prefix: Uint8Array, fileSize: number, file: string): number {
  if (prefix.byteLength < LENGTH_PREFIX_BYTES) {
    throw new TruncatedFileError(file, LENGTH_PREFIX_BYTES, prefix.byteLength);
  }
  const n = new DataView(prefix.buffer, prefix.byteOffset, LENGTH_PREFIX_BYTES).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new HeaderTooLargeError(file, n, MAX_HEADER_BYTES);
  }
  const length = Number(n);
  if (LENGTH_PREFIX_BYTES + length > fileSize) {
    throw new HeaderPastEndError(file, length, fileSize);
  }
  return length;
}

/** The 8-byte prefix for a header of `length` bytes (offset 0, u64 LE). */
export function encodeHeaderLength(length: number): Uint8Array {
  const prefix = new Uint8Array(LENGTH_PREFIX_BYTES);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(length), true);
  return prefix;
}

/**
 * Validates a header completely: UTF-8 JSON object, no duplicate keys, string -> string
 * metadata, well-formed entries of supported dtypes, offsets that tile the data buffer exactly
 * (gap and overlap told apart), byte lengths that match dtype x shape, and a file size equal to
 * 8 + N + the end of the last tensor. `json` is the N header bytes that follow the prefix.
 */
export function parseSafetensorsHeader(json: Uint8Array, fileSize: number, file: string): ParsedHeader {
  const dataStart = LENGTH_PREFIX_BYTES + json.byteLength;
  if (json.byteLength > MAX_HEADER_BYTES) {
    throw new HeaderTooLargeError(file, BigInt(json.byteLength), MAX_HEADER_BYTES);
  }
  if (dataStart > fileSize) {
    throw new HeaderPastEndError(file, json.byteLength, fileSize);
  }
  const root = parseRoot(json, file);
  const metadata = parseMetadata(Object.hasOwn(root, METADATA_KEY) ? root[METADATA_KEY] : undefined, file);
  const entries = Object.keys(root)
    .filter((name) => name !== METADATA_KEY)
    .map((name) => parseEntry(file, name, root[name]));
  return { tensors: tile(file, entries, dataStart, fileSize), metadata };
}

/** numel x itemsize, or undefined when it is not a safe integer. */
export function checkedByteLength(dtype: Dtype, shape: readonly number[]): number | undefined {
  let n = dtypeBytes(dtype);
  for (const d of shape) {
    n *= d;
    if (!Number.isSafeInteger(n)) {
      return undefined;
    }
  }
  return n;
}

function parseRoot(json: Uint8Array, file: string): Record<string, unknown> {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(json);
  } catch (cause) {
    throw new BadJsonError(file, "it is not valid UTF-8", cause);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new BadJsonError(file, cause instanceof Error ? cause.message : String(cause), cause);
  }
  if (!isPlainObject(value)) {
    throw new BadJsonError(file, `found ${describe(value)}`);
  }
  const duplicate = findDuplicateKey(text);
  if (duplicate !== undefined) {
    throw new DuplicateTensorError(file, duplicate);
  }
  return value;
}

function parseMetadata(value: unknown, file: string): Record<string, string> {
  if (value === undefined || value === null) {
    return {};
  }
  if (!isPlainObject(value)) {
    throw new BadMetadataError(file, `found ${describe(value)}`);
  }
  const entries = Object.entries(value);
  for (const [key, v] of entries) {
    if (typeof v !== "string") {
      throw new BadMetadataError(file, `key ${JSON.stringify(key)} holds ${describe(v)}`);
    }
  }
  return Object.fromEntries(entries) as Record<string, string>;
}

function parseEntry(file: string, name: string, raw: unknown): Entry {
  if (!isPlainObject(raw)) {
    throw new BadEntryError(file, name, `expected an object with dtype, shape and data_offsets, found ${describe(raw)}`);
  }
  const dtype = raw["dtype"];
  if (typeof dtype !== "string") {
    throw new BadEntryError(file, name, `dtype must be a string, found ${describe(dtype)}`);
  }
  if (!isDtype(dtype)) {
    throw new UnknownDtypeError(file, name, dtype, (REFERENCE_DTYPE_ORDER as readonly string[]).includes(dtype));
  }
  const shape = readCounts(file, name, "shape", raw["shape"]);
  const [begin, end, ...rest] = readCounts(file, name, "data_offsets", raw["data_offsets"]);
  if (begin === undefined || end === undefined || rest.length > 0) {
    throw new BadEntryError(file, name, `data_offsets must be [begin, end], found ${JSON.stringify(raw["data_offsets"])}`);
  }
  if (end < begin) {
    throw new BadEntryError(file, name, `data_offsets [${begin}, ${end}] end before they begin`);
  }
  return { name, dtype, shape, begin, end };
}

/** An array of non-negative safe integers. */
function readCounts(file: string, name: string, field: string, value: unknown): number[] {
  if (!Array.isArray(value)) {
    throw new BadEntryError(file, name, `${field} must be an array, found ${describe(value)}`);
  }
  const out: number[] = [];
  for (const item of value as unknown[]) {
    if (typeof item !== "number" || !Number.isSafeInteger(item) || item < 0) {
      throw new BadEntryError(file, name, `${field} must hold non-negative integers below 2^53, found ${JSON.stringify(item)}`);
    }
    out.push(item);
  }
  return out;
}

/** Sorts by data_offsets and checks that the entries tile [0, fileSize - dataStart) exactly. */
function tile(file: string, entries: readonly Entry[], dataStart: number, fileSize: number): StoredTensor[] {
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end || (a.name < b.name ? -1 : 1));
  const out: StoredTensor[] = [];
  let cursor = 0;
  let previous: Entry | undefined;
  for (const e of sorted) {
    if (e.begin > cursor) {
      throw new OffsetGapError(file, e.name, previous?.name, cursor, e.begin);
    }
    if (e.begin < cursor) {
      throw new OffsetOverlapError(file, e.name, previous?.name ?? "", cursor, e.begin);
    }
    const expected = checkedByteLength(e.dtype, e.shape);
    if (expected === undefined) {
      throw new BadEntryError(file, e.name, `shape [${e.shape.join(", ")}] has more bytes than 2^53`);
    }
    if (e.end - e.begin !== expected) {
      throw ByteLengthMismatchError.of(file, e.name, e.dtype, e.shape, expected, e.end - e.begin);
    }
    out.push({ name: e.name, dtype: e.dtype, shape: e.shape, file, dataOffset: dataStart + e.begin, byteLength: expected });
    cursor = e.end;
    previous = e;
  }
  if (cursor > fileSize - dataStart) {
    throw new TruncatedFileError(file, dataStart + cursor, fileSize);
  }
  if (cursor < fileSize - dataStart) {
    throw new TrailingBytesError(file, dataStart + cursor, fileSize);
  }
  return out;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;

/**
 * The first top-level key that appears twice in `text`, a JSON object JSON.parse accepted
 * (JSON.parse keeps the last of duplicates silently; the format forbids them).
 */
function findDuplicateKey(text: string): string | undefined {
  const seen = new Set<string>();
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const end = endOfString(text, i);
      if (depth === 1 && text.charCodeAt(skipSpace(text, end + 1)) === COLON) {
        const key = JSON.parse(text.slice(i, end + 1)) as string;
        if (seen.has(key)) {
          return key;
        }
        seen.add(key);
      }
      i = end;
    } else if (c === 0x7b || c === 0x5b) {
      depth++;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    }
  }
  return undefined;
}

/** Index of the quote closing the string that opens at `start`. */
function endOfString(text: string, start: number): number {
  let i = start + 1;
  while (i < text.length && text.charCodeAt(i) !== QUOTE) {
    i += text.charCodeAt(i) === BACKSLASH ? 2 : 1;
  }
  return i;
}

function skipSpace(text: string, from: number): number {
  let i = from;
  while (i < text.length && " \t\n\r".includes(text.charAt(i))) {
    i++;
  }
  return i;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null || value === undefined) {
    return String(value);
  }
  if (Array.isArray(value)) {
    return "an array";
  }
  return typeof value === "object" ? "an object" : `${typeof value} ${JSON.stringify(value)}`;
}
