import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { isDtype, numelOf, type TensorSpec } from "../../model/tensor.js";
import { FileSink } from "../io/file-sink.js";
import { BadEntryError, BadMetadataError, DuplicateTensorError, HeaderTooLargeError, PayloadLengthError, ShardSizeError } from "./errors.js";
import { checkedByteLength, encodeHeaderLength } from "./header.js";
import { serializeSafetensorsIndex } from "./index-json.js";
import {
  DEFAULT_METADATA,
  HEADER_ALIGN,
  HEADER_PAD_BYTE,
  INDEX_FILE_NAME,
  LENGTH_PREFIX_BYTES,
  MAX_HEADER_BYTES,
  METADATA_KEY,
  SINGLE_FILE_NAME,
  shardFileName,
} from "./spec.js";

/**
 * A tensor to write. `data` yields exactly byteLengthOf(spec) bytes, in chunks of any size;
 * a chunk belongs to the writer once yielded (it may be buffered, so do not reuse it).
 */
export interface TensorPayload {
  readonly spec: TensorSpec;
  readonly data: () => AsyncIterable<Uint8Array>;
}

/** Shown in errors from the pure serializer, which does not know the file. */
const UNNAMED = "<safetensors header>";

/**
 * The header bytes for `specs` laid out in the given order: the 8-byte length, compact JSON
 * with "__metadata__" first (only when `metadata` is given), space padding to a multiple of 8.
 * `offsets[i]` is where tensor i begins in the data buffer (its data_offsets[0]); its file
 * offset is `header.byteLength + offsets[i]`.
 */
export function serializeSafetensorsHeader(
  specs: readonly TensorSpec[],
  metadata?: Record<string, string>,
): { header: Uint8Array; offsets: number[] } {
  return serializeHeaderFor(UNNAMED, specs, metadata);
}

function serializeHeaderFor(file: string, specs: readonly TensorSpec[], metadata?: Record<string, string>): { header: Uint8Array; offsets: number[] } {
  const parts = metadata === undefined ? [] : [`${JSON.stringify(METADATA_KEY)}:${metadataJson(file, metadata)}`];
  const offsets: number[] = [];
  const seen = new Set<string>();
  let cursor = 0;
  for (const spec of specs) {
    const length = specByteLength(file, spec, seen);
    offsets.push(cursor);
    const entry = `{"dtype":"${spec.dtype}","shape":[${spec.shape.join(",")}],"data_offsets":[${cursor},${cursor + length}]}`;
    parts.push(`${JSON.stringify(spec.name)}:${entry}`);
    cursor += length;
    if (!Number.isSafeInteger(cursor)) {
      throw new BadEntryError(file, spec.name, "the tensors hold more than 2^53 bytes together");
    }
  }
  const json = new TextEncoder().encode(`{${parts.join(",")}}`);
  const padded = Math.ceil((LENGTH_PREFIX_BYTES + json.byteLength) / HEADER_ALIGN) * HEADER_ALIGN - LENGTH_PREFIX_BYTES;
  if (padded > MAX_HEADER_BYTES) {
    throw new HeaderTooLargeError(file, BigInt(padded), MAX_HEADER_BYTES);
  }
  // offset 0: u64 LE N | offset 8: JSON | then spaces up to 8 + N
  const header = new Uint8Array(LENGTH_PREFIX_BYTES + padded).fill(HEADER_PAD_BYTE);
  header.set(encodeHeaderLength(padded), 0);
  header.set(json, LENGTH_PREFIX_BYTES);
  return { header, offsets };
}

function specByteLength(file: string, spec: TensorSpec, seen: Set<string>): number {
  if (spec.name === METADATA_KEY) {
    throw new BadEntryError(file, spec.name, "the name is reserved for the metadata map");
  }
  if (seen.has(spec.name)) {
    throw new DuplicateTensorError(file, spec.name);
  }
  seen.add(spec.name);
  if (!isDtype(spec.dtype)) {
    throw new BadEntryError(file, spec.name, `unknown dtype ${JSON.stringify(spec.dtype)}`);
  }
  if (!spec.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new BadEntryError(file, spec.name, `shape [${spec.shape.join(", ")}] must hold non-negative integers`);
  }
  const length = checkedByteLength(spec.dtype, spec.shape);
  if (length === undefined) {
    throw new BadEntryError(file, spec.name, `shape [${spec.shape.join(", ")}] has more bytes than 2^53`);
  }
  return length;
}

function metadataJson(file: string, metadata: Record<string, string>): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value !== "string") {
      throw new BadMetadataError(file, `key ${JSON.stringify(key)} holds a ${typeof value}`);
    }
    parts.push(`${JSON.stringify(key)}:${JSON.stringify(value)}`);
  }
  return `{${parts.join(",")}}`;
}

/**
 * Writes a new file at `path` (it must not exist): header first, then each payload's bytes in
 * order, then fsync. Metadata defaults to {"format":"pt"}. On any error the partial file is
 * removed. Returns the file size.
 */
export async function writeSafetensors(
  path: string,
  tensors: readonly TensorPayload[],
  options?: { metadata?: Record<string, string> },
): Promise<{ bytes: number }> {
  const specs = tensors.map((t) => t.spec);
  const { header } = serializeHeaderFor(path, specs, options?.metadata ?? { ...DEFAULT_METADATA });
  const sink = await FileSink.create(path);
  try {
    await sink.write(header);
    for (const payload of tensors) {
      await writePayload(sink, payload);
    }
    const bytes = sink.position;
    await sink.close();
    return { bytes };
  } catch (error) {
    await sink.abandon();
    await rm(path, { force: true });
    throw error;
  }
}

async function writePayload(sink: FileSink, payload: TensorPayload): Promise<void> {
  const { spec } = payload;
  const expected = checkedByteLength(spec.dtype, spec.shape) ?? 0;
  let written = 0;
  for await (const chunk of payload.data()) {
    if (written + chunk.byteLength > expected) {
      throw new PayloadLengthError(sink.path, spec.name, expected, written + chunk.byteLength, true);
    }
    await sink.write(chunk);
    written += chunk.byteLength;
  }
  if (written !== expected) {
    throw new PayloadLengthError(sink.path, spec.name, expected, written, false);
  }
}

/**
 * Groups tensors into shards greedily in the given order, as transformers' `shard_checkpoint`
 * did: a tensor that would push a non-empty shard past `maxShardBytes` starts a new one, so a
 * tensor bigger than the limit ends up alone. Always at least one (possibly empty) shard.
 */
export function planShards(specs: readonly TensorSpec[], maxShardBytes: number): TensorSpec[][] {
  if (!Number.isSafeInteger(maxShardBytes) || maxShardBytes <= 0) {
    throw new ShardSizeError(UNNAMED, maxShardBytes);
  }
  let current: TensorSpec[] = [];
  const shards = [current];
  let size = 0;
  for (const spec of specs) {
    const length = checkedByteLength(spec.dtype, spec.shape) ?? Number.MAX_SAFE_INTEGER;
    if (size + length > maxShardBytes && current.length > 0) {
      current = [];
      shards.push(current);
      size = 0;
    }
    current.push(spec);
    size += length;
  }
  return shards;
}

/**
 * Writes `tensors` into `dir` (created if missing) as one `model.safetensors`, or, when they
 * need more than one shard, as `model-0000i-of-0000N.safetensors` plus
 * `model.safetensors.index.json`. Returns the paths written and the total tensor data bytes.
 * On error, files written so far are removed.
 */
export async function writeSafetensorsSharded(
  dir: string,
  tensors: readonly TensorPayload[],
  options: { maxShardBytes: number; metadata?: Record<string, string> },
): Promise<{ files: string[]; indexFile?: string; totalSize: number }> {
  if (!Number.isSafeInteger(options.maxShardBytes) || options.maxShardBytes <= 0) {
    throw new ShardSizeError(dir, options.maxShardBytes);
  }
  const byName = new Map<string, TensorPayload>();
  for (const t of tensors) {
    if (byName.has(t.spec.name)) {
      throw new DuplicateTensorError(dir, t.spec.name);
    }
    byName.set(t.spec.name, t);
  }
  const plan = planShards(tensors.map((t) => t.spec), options.maxShardBytes);
  const names = plan.length === 1 ? [SINGLE_FILE_NAME] : plan.map((_, i) => shardFileName(i, plan.length));
  await mkdir(dir, { recursive: true });
  const written: string[] = [];
  try {
    for (const [i, shard] of plan.entries()) {
      const path = join(dir, names[i] ?? SINGLE_FILE_NAME);
      const payloads = shard.map((spec) => byName.get(spec.name)).filter((p): p is TensorPayload => p !== undefined);
      await writeSafetensors(path, payloads, options.metadata === undefined ? undefined : { metadata: options.metadata });
      written.push(path);
    }
    const totalSize = tensors.reduce((sum, t) => sum + (checkedByteLength(t.spec.dtype, t.spec.shape) ?? 0), 0);
    if (plan.length === 1) {
      return { files: written, totalSize };
    }
    const indexFile = join(dir, INDEX_FILE_NAME);
    await writeIndex(indexFile, plan, names, totalSize);
    return { files: written, indexFile, totalSize };
  } catch (error) {
    await Promise.all(written.map((path) => rm(path, { force: true })));
    throw error;
  }
}

async function writeIndex(path: string, plan: readonly TensorSpec[][], names: readonly string[], totalSize: number): Promise<void> {
  const weightMap = new Map<string, string>();
  let parameters = 0;
  for (const [i, shard] of plan.entries()) {
    for (const spec of shard) {
      weightMap.set(spec.name, names[i] ?? "");
      parameters += numelOf(spec.shape);
    }
  }
  const sink = await FileSink.create(path);
  try {
    await sink.write(new TextEncoder().encode(serializeSafetensorsIndex(weightMap, totalSize, parameters)));
    await sink.close();
  } catch (error) {
    await sink.abandon();
    await rm(path, { force: true });
    throw error;
  }
}
