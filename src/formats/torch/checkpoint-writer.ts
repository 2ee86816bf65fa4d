import { rm } from "node:fs/promises";
import { parse } from "node:path";
import { dtypeBytes } from "../../model/tensor.js";
import { FileSink } from "../io/file-sink.js";
import { pickle, type PickledStorage } from "./pickle/pickler.js";
import type { PyValue } from "./pickle/values.js";
import { ZipWriter } from "./zip/writer.js";
import { ArchiveLayoutError, StorageByteCountError } from "./errors.js";

export interface WriteTorchCheckpointOptions {
  /** The archive folder; default: the file's basename without its last extension (as torch.save). */
  readonly prefix?: string;
  /** "torch2": the torch >= 2.7 record set (default); "torch1.13": data.pkl, data/* in lexicographic order, version. */
  readonly recordSet?: "torch2" | "torch1.13";
  /** Test hook: zip64 extras on every record. */
  readonly forceZip64?: boolean;
  /** Content of .data/serialization_id (torch2 only); default 40 zeros. */
  readonly serializationId?: string;
}

interface PlannedRecord {
  readonly name: string;
  readonly size: number;
  readonly data: Uint8Array | AsyncIterable<Uint8Array>;
}

const ascii = (text: string): Uint8Array => new TextEncoder().encode(text);

/**
 * Writes `root` as torch.save would (torch-format.md section 6): data.pkl, then each storage
 * streamed into its record with its CRC computed on the fly, then the small records and the
 * central directory. The file must not exist; on error the partial file is removed.
 */
export async function writeTorchCheckpoint(path: string, root: PyValue, options: WriteTorchCheckpointOptions = {}): Promise<{ bytes: number }> {
  const prefix = options.prefix ?? parse(path).name;
  if (prefix === "" || prefix.includes("/")) {
    throw new ArchiveLayoutError(path, `archive prefix ${JSON.stringify(prefix)} must be one non-empty folder name`);
  }
  const pickled = pickle(root, path);
  const records = planRecords(path, pickled.bytes, pickled.storages, options);
  const sink = await FileSink.create(path);
  try {
    const zip = new ZipWriter(sink, { forceZip64: options.forceZip64 === true });
    for (const record of records) {
      await zip.add(`${prefix}/${record.name}`, record.size, record.data);
    }
    await zip.finish();
    await sink.close();
    return { bytes: zip.bytesWritten };
  } catch (error) {
    await sink.abandon();
    await rm(path, { force: true });
    throw error;
  }
}

function planRecords(path: string, pkl: Uint8Array, storages: readonly PickledStorage[], options: WriteTorchCheckpointOptions): PlannedRecord[] {
  const small = (name: string, text: string): PlannedRecord => ({ name, size: ascii(text).byteLength, data: ascii(text) });
  const storageRecords = storages.map((s) => storageRecord(path, s));
  const records: PlannedRecord[] = [{ name: "data.pkl", size: pkl.byteLength, data: pkl }];
  if (options.recordSet === "torch1.13") {
    storageRecords.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    records.push(...storageRecords, small("version", "3\n"));
    return records;
  }
  records.push(small(".format_version", "1"), small(".storage_alignment", "64"), small("byteorder", "little"));
  records.push(...storageRecords, small("version", "3\n"));
  records.push(small(".data/serialization_id", options.serializationId ?? "0".repeat(40)));
  return records;
}

function storageRecord(path: string, { key, storage }: PickledStorage): PlannedRecord {
  const size = storage.numel * dtypeBytes(storage.dtype);
  return { name: `data/${key}`, size, data: counted(path, key, size, storage.data) };
}

/** Passes the chunks through, failing as soon as the count is known to differ from `expected`. */
async function* counted(path: string, key: string, expected: number, data: () => AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  let found = 0;
  for await (const chunk of data()) {
    found += chunk.byteLength;
    if (found > expected) {
      throw new StorageByteCountError(path, key, expected, found);
    }
    yield chunk;
  }
  if (found !== expected) {
    throw new StorageByteCountError(path, key, expected, found);
  }
}
