import type { StoredTensor } from "../../model/tensor.js";
import type { ByteSource } from "../io/byte-source.js";
import { FileSource } from "../io/file-source.js";
import { RangeOutOfBoundsError, TruncatedFileError } from "./errors.js";
import { decodeHeaderLength, parseSafetensorsHeader } from "./header.js";
import { LENGTH_PREFIX_BYTES } from "./spec.js";

export { parseSafetensorsHeader } from "./header.js";

/** An open safetensors file whose header has been validated; tensor bytes are read on demand. */
export interface SafetensorsFile {
  /** `source.name` is the path shown in errors. */
  readonly source: ByteSource;
  /** In data-offset order; `file` is `source.name`, `dataOffset` is absolute. */
  readonly tensors: readonly StoredTensor[];
  readonly metadata: Readonly<Record<string, string>>;
  /** 8 + N: the offset of the data buffer. */
  readonly headerBytes: number;
  tensor(name: string): StoredTensor | undefined;
  /** Closes the source. */
  close(): Promise<void>;
}

/**
 * Reads and validates the header of `source` (two positional reads: the 8-byte prefix, then
 * the N header bytes once N has been checked). On failure the source is left open: the
 * caller owns it until this returns.
 */
export async function openSafetensors(source: ByteSource): Promise<SafetensorsFile> {
  if (source.size < LENGTH_PREFIX_BYTES) {
    throw new TruncatedFileError(source.name, LENGTH_PREFIX_BYTES, source.size);
  }
  const length = decodeHeaderLength(await source.read(0, LENGTH_PREFIX_BYTES), source.size, source.name);
  const json = await source.read(LENGTH_PREFIX_BYTES, length);
  const { tensors, metadata } = parseSafetensorsHeader(json, source.size, source.name);
  const byName = new Map(tensors.map((t) => [t.name, t] as const));
  return {
    source,
    tensors,
    metadata,
    headerBytes: LENGTH_PREFIX_BYTES + length,
    tensor: (name) => byName.get(name),
    close: () => source.close(),
  };
}

/** Opens a local file; it is closed again if its header is invalid. */
export async function openSafetensorsFile(path: string): Promise<SafetensorsFile> {
  const source = await FileSource.open(path);
  try {
    return await openSafetensors(source);
  } catch (error) {
    await source.close();
    throw error;
  }
}

/**
 * Reads `length` bytes starting `offset` bytes into tensor `t` (one positional read of just
 * that range). The range must lie inside the tensor.
 */
export async function readTensorRange(source: ByteSource, t: StoredTensor, offset: number, length: number): Promise<Uint8Array> {
  const inside =
    Number.isSafeInteger(offset) && Number.isSafeInteger(length) && offset >= 0 && length >= 0 && length <= t.byteLength - offset;
  if (!inside) {
    throw new RangeOutOfBoundsError(t.file, t.name, offset, length, t.byteLength);
  }
  return source.read(t.dataOffset + offset, length);
}
