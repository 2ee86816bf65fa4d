import { dtypeBytes, type Dtype } from "../../model/tensor.js";
import type { ByteSource } from "../io/byte-source.js";
import { FileSource } from "../io/file-source.js";
import { dtypeOfStorageClass } from "./dtypes.js";
import { pickleLimits, type PickleLimits } from "./pickle/limits.js";
import { unpickle } from "./pickle/unpickler.js";
import { PyGlobal, PyTuple, TensorRef, type PyValue, type StorageRef } from "./pickle/values.js";
import type { SeenPickles } from "./seen-pickles.js";
import { readZipEntries, readZipRecord, type ZipEntry } from "./zip/reader.js";
import {
  ArchiveLayoutError,
  ArchiveVersionError,
  MissingRecordError,
  PickleLimitError,
  PickleMalformedError,
  StorageSizeMismatchError,
  TensorLayoutError,
  ZipUnsupportedError,
} from "./errors.js";

export type { PickleLimits } from "./pickle/limits.js";

export interface TorchCheckpoint {
  readonly file: string;
  readonly root: PyValue;
  /** By record name without the prefix: data offset and size in the file. */
  readonly records: ReadonlyMap<string, { offset: number; size: number }>;
  readonly prefix: string;
}

export interface ReadTorchCheckpointOptions {
  readonly limits?: Partial<PickleLimits>;
  /** Pickles read before (the other rank files of a checkpoint): one with the same bytes is copied, not unpickled again. */
  readonly seen?: SeenPickles;
}

const MIN_VERSION = 1;
const MAX_VERSION = 10;

/**
 * Reads a torch.save zip checkpoint: the zip directory, `version`, `byteorder` and data.pkl,
 * unpickled by the restricted unpickler. Tensors come back as lazy TensorRefs whose storages
 * are checked against their records; no tensor bytes are read.
 */
export async function readTorchCheckpoint(source: ByteSource, options: ReadTorchCheckpointOptions = {}): Promise<TorchCheckpoint> {
  const limits = pickleLimits(options.limits);
  const { prefix, entries } = archiveEntries(source.name, await readZipEntries(source));
  await checkVersion(source, entries);
  const pkl = entries.get("data.pkl");
  if (pkl === undefined) {
    throw new MissingRecordError(source.name, `${prefix}/data.pkl`);
  }
  if (pkl.size > limits.maxPickleBytes) {
    throw new PickleLimitError(source.name, "maxPickleBytes", limits.maxPickleBytes, 0);
  }
  const bytes = await readZipRecord(source, pkl);
  const persistentLoad = storageLoader(source.name, prefix, entries);
  const root = options.seen === undefined ? unpickle(bytes, { file: source.name, limits, persistentLoad }) : options.seen.unpickle(bytes, source.name, limits, persistentLoad);
  const records = new Map([...entries].map(([name, e]) => [name, { offset: e.dataOffset, size: e.size }]));
  return { file: source.name, root, records, prefix };
}

export async function readTorchCheckpointFile(path: string, options: ReadTorchCheckpointOptions = {}): Promise<TorchCheckpoint> {
  const source = await FileSource.open(path);
  try {
    return await readTorchCheckpoint(source, options);
  } finally {
    await source.close();
  }
}

/**
 * The row-major bytes of a tensor: one positional read when it is contiguous, else the
 * covering span of its storage gathered by stride.
 */
export async function readTensorBytes(source: ByteSource, tensor: TensorRef): Promise<Uint8Array> {
  if (tensor.isContiguous) {
    const { offset, length } = tensor.contiguousRange();
    return length === 0 ? new Uint8Array(0) : source.read(offset, length);
  }
  const itemsize = dtypeBytes(tensor.dtype);
  const span = tensor.shape.reduce((acc, size, i) => acc + (size - 1) * (tensor.stride[i] ?? 0), 0) + 1;
  const covering = await source.read(tensor.storage.dataOffset + tensor.storageOffset * itemsize, span * itemsize);
  return gatherStrided(covering, itemsize, tensor.shape, tensor.stride);
}

/** Entries by name without the prefix; all must share the first entry's top-level folder. */
function archiveEntries(file: string, list: readonly ZipEntry[]): { prefix: string; entries: Map<string, ZipEntry> } {
  const first = list[0];
  const slash = first?.name.indexOf("/") ?? -1;
  if (first === undefined || slash <= 0) {
    throw new ArchiveLayoutError(file, first === undefined ? "the archive is empty" : `record "${first.name}" is not inside a folder; torch.save puts every record under one`);
  }
  const prefix = first.name.slice(0, slash);
  const entries = new Map<string, ZipEntry>();
  for (const entry of list) {
    if (!entry.name.startsWith(`${prefix}/`)) {
      throw new ArchiveLayoutError(file, `record "${entry.name}" is outside the archive folder "${prefix}/"`);
    }
    entries.set(entry.name.slice(prefix.length + 1), entry);
  }
  return { prefix, entries };
}

async function smallRecord(source: ByteSource, entry: ZipEntry): Promise<string> {
  if (entry.size > 64) {
    throw new ArchiveVersionError(source.name, entry.name, `<${entry.size} bytes>`, "a short ASCII value");
  }
  return new TextDecoder().decode(await readZipRecord(source, entry));
}

/** `version` (or `.data/version`) must be an integer 1..10; `byteorder`, if present, `little`. */
async function checkVersion(source: ByteSource, entries: ReadonlyMap<string, ZipEntry>): Promise<void> {
  const version = entries.get("version") ?? entries.get(".data/version");
  if (version === undefined) {
    throw new MissingRecordError(source.name, "version");
  }
  const text = await smallRecord(source, version);
  const value = /^\s*\d+\s*$/.test(text) ? Number(text) : NaN;
  if (!(value >= MIN_VERSION && value <= MAX_VERSION)) {
    throw new ArchiveVersionError(source.name, version.name, text, `an integer ${MIN_VERSION}..${MAX_VERSION}`);
  }
  const byteorder = entries.get("byteorder");
  if (byteorder !== undefined) {
    const order = await smallRecord(source, byteorder);
    if (order !== "little") {
      throw new ArchiveVersionError(source.name, byteorder.name, order, '"little" (big-endian checkpoints are not supported)');
    }
  }
}

/** persistent_load: ('storage', StorageClass, key, location, numel) -> a 1-D TensorRef over data/<key>. */
function storageLoader(file: string, prefix: string, entries: ReadonlyMap<string, ZipEntry>) {
  const cache = new Map<string, TensorRef>();
  return (pid: PyValue, position: number): PyValue => {
    const fields = pid instanceof PyTuple ? pid.items : [];
    const [tag, cls, key, , numel] = fields;
    if (fields.length !== 5 || tag !== "storage" || !(cls instanceof PyGlobal) || typeof key !== "string" || typeof numel !== "number" || numel < 0) {
      throw new PickleMalformedError(file, position, "persistent id is not ('storage', class, key, location, numel)");
    }
    const cached = cache.get(key);
    if (cached !== undefined) {
      return cached;
    }
    const { dtype, bytesPerUnit } = storageType(file, cls);
    const entry = entries.get(`data/${key}`);
    if (entry === undefined) {
      throw new MissingRecordError(file, `${prefix}/data/${key}`);
    }
    if (entry.method !== 0) {
      throw new ZipUnsupportedError(file, entry.name, "storage records must be stored, not compressed");
    }
    const expected = numel * bytesPerUnit;
    if (entry.size !== expected) {
      throw new StorageSizeMismatchError(file, key, expected, entry.size);
    }
    const itemsize = dtypeBytes(dtype);
    const storage: StorageRef = { key, dtype, numel: expected / itemsize, file, dataOffset: entry.dataOffset, byteLength: expected };
    const handle = new TensorRef(dtype, [storage.numel], [1], 0, storage);
    cache.set(key, handle);
    return handle;
  };
}

/** Legacy storage classes are typed (numel in elements); UntypedStorage counts bytes (as U8). */
function storageType(file: string, cls: PyGlobal): { dtype: Dtype; bytesPerUnit: number } {
  if (cls.module === "torch.storage" && cls.name === "UntypedStorage") {
    return { dtype: "U8", bytesPerUnit: 1 };
  }
  const dtype = cls.module === "torch" || cls.module === "torch.cuda" ? dtypeOfStorageClass(cls.name) : undefined;
  if (dtype === undefined) {
    throw new TensorLayoutError(file, `storage class ${cls.qualifiedName} is not supported`);
  }
  return { dtype, bytesPerUnit: dtypeBytes(dtype) };
}

/**
 * Copies the elements of a strided view into row-major order. `covering` starts at the view's
 * first element (storage offset) and spans its furthest one.
 */
function gatherStrided(covering: Uint8Array, itemsize: number, shape: readonly number[], stride: readonly number[]): Uint8Array {
  const numel = shape.reduce((a, b) => a * b, 1);
  const out = new Uint8Array(numel * itemsize);
  if (numel === 0) {
    return out;
  }
  const index = new Array<number>(shape.length).fill(0);
  let source = 0;
  for (let n = 0; n < numel; n += 1) {
    const from = source * itemsize;
    out.set(covering.subarray(from, from + itemsize), n * itemsize);
    for (let d = shape.length - 1; d >= 0; d -= 1) {
      const size = shape[d] ?? 1;
      const step = stride[d] ?? 0;
      index[d] = (index[d] ?? 0) + 1;
      source += step;
      if ((index[d] ?? 0) < size) {
        break;
      }
      source -= step * size;
      index[d] = 0;
    }
  }
  return out;
}
