import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import type { StoredTensor } from "../../model/tensor.js";
import type { ByteSource } from "../io/byte-source.js";
import { FileAccessError } from "../io/errors.js";
import { FileSource } from "../io/file-source.js";
import {
  DuplicateTensorError,
  IndexIncompleteError,
  IndexMissingShardError,
  NoSafetensorsError,
  TensorNotFoundError,
  type TensorPlacement,
} from "./errors.js";
import { parseSafetensorsIndex, type SafetensorsIndex } from "./index-json.js";
import { openSafetensors, type SafetensorsFile } from "./reader.js";
import { FILE_EXTENSION, INDEX_FILE_NAME, SINGLE_FILE_NAME } from "./spec.js";

/** The safetensors files of one checkpoint, their headers validated, tensors looked up by name. */
export interface SafetensorsCheckpoint {
  /** The folder, or the file when a single file was opened. */
  readonly location: string;
  readonly files: readonly SafetensorsFile[];
  /** By name, across shards; in file order, then data-offset order. */
  readonly tensors: ReadonlyMap<string, StoredTensor>;
  /** The ByteSource of the shard holding `tensor`. */
  sourceOf(tensor: StoredTensor): ByteSource;
  close(): Promise<void>;
}

type OpenSource = (path: string) => Promise<ByteSource>;

/**
 * Opens a HuggingFace model folder or a single safetensors file. In a folder, in order of
 * preference: `model.safetensors.index.json` (cross-checked against the shards it names),
 * `model.safetensors`, or every `*.safetensors` file (sorted by name).
 */
export async function openSafetensorsFolder(dir: string, options?: { openSource?: OpenSource }): Promise<SafetensorsCheckpoint> {
  const openSource = options?.openSource ?? ((path: string) => FileSource.open(path));
  const info = await stat(dir).catch((cause: unknown) => {
    throw new FileAccessError(dir, "open", cause);
  });
  if (!info.isDirectory()) {
    return assemble(dir, await openAll([dir], openSource));
  }
  const indexFile = join(dir, INDEX_FILE_NAME);
  if (await isFile(indexFile)) {
    return openIndexed(dir, indexFile, openSource);
  }
  const single = join(dir, SINGLE_FILE_NAME);
  if (await isFile(single)) {
    return assemble(dir, await openAll([single], openSource));
  }
  const paths = await listSafetensors(dir);
  if (paths.length === 0) {
    throw new NoSafetensorsError(dir);
  }
  return assemble(dir, await openAll(paths, openSource));
}

async function openIndexed(dir: string, indexFile: string, openSource: OpenSource): Promise<SafetensorsCheckpoint> {
  const text = await readFile(indexFile, "utf8").catch((cause: unknown) => {
    throw new FileAccessError(indexFile, "read", cause);
  });
  const index = parseSafetensorsIndex(text, indexFile);
  const shards = [...new Set(index.weightMap.values())].sort();
  for (const shard of shards) {
    const path = join(dir, shard);
    if (!(await isFile(path))) {
      throw new IndexMissingShardError(indexFile, shard, path);
    }
  }
  const files = await openAll(
    shards.map((shard) => join(dir, shard)),
    openSource,
  );
  try {
    checkAgainstIndex(indexFile, index, new Map(shards.map((shard, i) => [shard, files[i] as SafetensorsFile] as const)));
  } catch (error) {
    await closeAll(files).catch(() => undefined);
    throw error;
  }
  return assemble(dir, files);
}

/** Every weight_map entry is in its shard; every shard tensor is mapped to that shard. */
export function checkAgainstIndex(indexFile: string, index: SafetensorsIndex, byShard: ReadonlyMap<string, SafetensorsFile>): void {
  const missing: TensorPlacement[] = [];
  for (const [tensor, shard] of index.weightMap) {
    if (byShard.get(shard)?.tensor(tensor) === undefined) {
      missing.push({ tensor, shard });
    }
  }
  if (missing.length > 0) {
    throw new TensorNotFoundError(indexFile, missing);
  }
  const unlisted: TensorPlacement[] = [];
  for (const [shard, file] of byShard) {
    for (const t of file.tensors) {
      if (index.weightMap.get(t.name) !== shard) {
        unlisted.push({ tensor: t.name, shard });
      }
    }
  }
  if (unlisted.length > 0) {
    throw new IndexIncompleteError(indexFile, unlisted);
  }
}

/** Builds the checkpoint from opened files; closes them if two hold the same tensor name. */
export async function assemble(location: string, files: readonly SafetensorsFile[]): Promise<SafetensorsCheckpoint> {
  const tensors = new Map<string, StoredTensor>();
  const sources = new Map<string, ByteSource>();
  for (const file of files) {
    sources.set(file.source.name, file.source);
    for (const t of file.tensors) {
      const other = tensors.get(t.name);
      if (other !== undefined) {
        await closeAll(files).catch(() => undefined);
        throw new DuplicateTensorError(t.file, t.name, other.file);
      }
      tensors.set(t.name, t);
    }
  }
  return {
    location,
    files,
    tensors,
    sourceOf(tensor: StoredTensor): ByteSource {
      const source = sources.get(tensor.file);
      if (source === undefined) {
        throw new Error(`internal: tensor ${JSON.stringify(tensor.name)} is in ${tensor.file}, which is not part of ${location}`);
      }
      return source;
    },
    close: () => closeAll(files),
  };
}

/** Opens every path (concurrently); if any fails, closes the others and throws the first failure. */
async function openAll(paths: readonly string[], openSource: OpenSource): Promise<SafetensorsFile[]> {
  const results = await Promise.allSettled(paths.map((path) => openOne(path, openSource)));
  const opened = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  const failure = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failure !== undefined) {
    await closeAll(opened).catch(() => undefined);
    throw failure.reason;
  }
  return opened;
}

async function openOne(path: string, openSource: OpenSource): Promise<SafetensorsFile> {
  const source = await openSource(path);
  try {
    return await openSafetensors(source);
  } catch (error) {
    await source.close().catch(() => undefined);
    throw error;
  }
}

async function closeAll(files: readonly SafetensorsFile[]): Promise<void> {
  const results = await Promise.allSettled(files.map((f) => f.close()));
  const failure = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failure !== undefined) {
    throw failure.reason;
  }
}

async function listSafetensors(dir: string): Promise<string[]> {
  const names = (await readdir(dir)).filter((name) => name.endsWith(FILE_EXTENSION)).sort();
  const paths = names.map((name) => join(dir, name));
  const kept = await Promise.all(paths.map(isFile));
  return paths.filter((_, i) => kept[i] === true);
}

/** A regular file (following symlinks, as the HF cache uses them). */
async function isFile(path: string): Promise<boolean> {
  const info = await stat(path).catch(() => undefined);
  return info?.isFile() === true;
}
