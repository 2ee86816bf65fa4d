import { inflateRawSync } from "node:zlib";
import { readRanges, type ByteSource } from "../../io/byte-source.js";
import { CENTRAL, END, LOCAL, M32, SIG, ZIP64_END, ZIP64_EXTRA_ID, ZIP64_LOCATOR, isEncrypted, viewOf } from "./records.js";
import { ZipDirectoryError, ZipLocalHeaderError, ZipNoEndRecordError, ZipRecordBoundsError, ZipUnsupportedError } from "../errors.js";

export interface ZipEntry {
  readonly name: string;
  readonly flags: number;
  /** 0 stored, 8 deflated. */
  readonly method: number;
  readonly crc: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly headerOffset: number;
  /** From the local header: headerOffset + 30 + local name length + local extra length. */
  readonly dataOffset: number;
}

const MAX_COMMENT = 0xffff;
/** One decoder for every record name (making one per name cost more than the decoding). */
const UTF8 = new TextDecoder();
/** A central directory larger than this is refused before it is read. */
const MAX_CENTRAL_DIRECTORY_BYTES = 512 << 20;

interface Directory {
  readonly entries: number;
  readonly cdOffset: number;
  readonly cdSize: number;
  /** Where the central directory must end at the latest (the zip64 EOCD or the EOCD). */
  readonly limit: number;
}

/** Reads the central directory and every local header; offsets and sizes are checked against the file size. */
export async function readZipEntries(source: ByteSource): Promise<ZipEntry[]> {
  const dir = await readDirectoryLocation(source);
  if (dir.cdSize > MAX_CENTRAL_DIRECTORY_BYTES || dir.entries * CENTRAL.fixedSize > dir.cdSize) {
    throw new ZipDirectoryError(source.name, `${dir.entries} entries cannot fit a central directory of ${dir.cdSize} bytes`);
  }
  if (dir.cdOffset + dir.cdSize > dir.limit) {
    throw new ZipDirectoryError(source.name, `central directory at offset ${dir.cdOffset} (${dir.cdSize} bytes) runs past the end records at ${dir.limit}`);
  }
  const cd = await source.read(dir.cdOffset, dir.cdSize);
  const central: ParsedCentral[] = [];
  const seen = new Set<string>();
  let at = 0;
  for (let i = 0; i < dir.entries; i += 1) {
    const parsed = parseCentralHeader(source.name, cd, at);
    if (seen.has(parsed.name)) {
      throw new ZipDirectoryError(source.name, `record "${parsed.name}" appears twice`);
    }
    if (parsed.headerOffset + LOCAL.fixedSize > source.size) {
      throw new ZipRecordBoundsError(source.name, parsed.name, parsed.headerOffset, LOCAL.fixedSize, source.size);
    }
    seen.add(parsed.name);
    central.push(parsed);
    at = parsed.next;
  }
  // one small read per record: all in one call
  const locals = await readRanges(source, central.map((e) => ({ offset: e.headerOffset, length: LOCAL.fixedSize })));
  return central.map((entry, i) => withDataOffset(source, entry, viewOf(locals[i] as Uint8Array)));
}

/** The bytes of a small record (data.pkl, version ...): stored or deflated. */
export async function readZipRecord(source: ByteSource, entry: ZipEntry): Promise<Uint8Array> {
  const raw = await source.read(entry.dataOffset, entry.compressedSize);
  if (entry.method === 0) {
    return raw;
  }
  if (entry.method !== 8) {
    throw new ZipUnsupportedError(source.name, entry.name, `compression method ${entry.method} is not supported (only stored and deflate)`);
  }
  try {
    const out = inflateRawSync(raw, { maxOutputLength: Math.max(1, entry.size) });
    if (out.byteLength !== entry.size) {
      throw new Error(`inflated to ${out.byteLength} bytes, expected ${entry.size}`);
    }
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new ZipUnsupportedError(source.name, entry.name, `cannot inflate: ${reason}`);
  }
}

async function readDirectoryLocation(source: ByteSource): Promise<Directory> {
  const eocdOffset = await findEndRecord(source);
  const eocd = viewOf(await source.read(eocdOffset, END.fixedSize));
  const classic: Directory = {
    entries: eocd.getUint16(END.entries, true),
    cdSize: eocd.getUint32(END.cdSize, true),
    cdOffset: eocd.getUint32(END.cdOffset, true),
    limit: eocdOffset,
  };
  if (eocdOffset < ZIP64_LOCATOR.fixedSize) {
    return classic;
  }
  const locatorOffset = eocdOffset - ZIP64_LOCATOR.fixedSize;
  const locator = viewOf(await source.read(locatorOffset, ZIP64_LOCATOR.fixedSize));
  if (locator.getUint32(ZIP64_LOCATOR.signature, true) !== SIG.zip64Locator) {
    return classic;
  }
  const zip64EndOffset = readU64(source.name, locator, ZIP64_LOCATOR.zip64EndOffset, "zip64 end record offset");
  if (zip64EndOffset + ZIP64_END.fixedSize > locatorOffset) {
    throw new ZipDirectoryError(source.name, `zip64 end record offset ${zip64EndOffset} is past the locator at ${locatorOffset}`);
  }
  const z64 = viewOf(await source.read(zip64EndOffset, ZIP64_END.fixedSize));
  if (z64.getUint32(ZIP64_END.signature, true) !== SIG.zip64End) {
    throw new ZipDirectoryError(source.name, `no zip64 end record signature at offset ${zip64EndOffset}`);
  }
  return {
    entries: readU64(source.name, z64, ZIP64_END.entries, "entry count"),
    cdSize: readU64(source.name, z64, ZIP64_END.cdSize, "central directory size"),
    cdOffset: readU64(source.name, z64, ZIP64_END.cdOffset, "central directory offset"),
    limit: zip64EndOffset,
  };
}

/** Scans back at most 22 + 65535 bytes for PK\5\6 (the last one wins). */
async function findEndRecord(source: ByteSource): Promise<number> {
  if (source.size < END.fixedSize) {
    throw new ZipNoEndRecordError(source.name);
  }
  const tailLength = Math.min(source.size, END.fixedSize + MAX_COMMENT);
  const tailStart = source.size - tailLength;
  const tail = viewOf(await source.read(tailStart, tailLength));
  for (let i = tailLength - END.fixedSize; i >= 0; i -= 1) {
    if (tail.getUint32(i, true) === SIG.end) {
      return tailStart + i;
    }
  }
  throw new ZipNoEndRecordError(source.name);
}

function readU64(file: string, view: DataView, at: number, what: string): number {
  const value = view.getBigUint64(at, true);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new ZipDirectoryError(file, `${what} ${value} is too large`);
  }
  return Number(value);
}

type ParsedCentral = Omit<ZipEntry, "dataOffset"> & { readonly next: number };

function parseCentralHeader(file: string, cd: Uint8Array, at: number): ParsedCentral {
  const view = viewOf(cd);
  if (at + CENTRAL.fixedSize > cd.byteLength || view.getUint32(at + CENTRAL.signature, true) !== SIG.central) {
    throw new ZipDirectoryError(file, `no central directory header at directory byte ${at}`);
  }
  const nameLength = view.getUint16(at + CENTRAL.nameLength, true);
  const extraLength = view.getUint16(at + CENTRAL.extraLength, true);
  const commentLength = view.getUint16(at + CENTRAL.commentLength, true);
  const nameAt = at + CENTRAL.fixedSize;
  const next = nameAt + nameLength + extraLength + commentLength;
  if (next > cd.byteLength) {
    throw new ZipDirectoryError(file, `central directory header at directory byte ${at} runs past the directory`);
  }
  const name = UTF8.decode(cd.subarray(nameAt, nameAt + nameLength));
  const fields = {
    size: view.getUint32(at + CENTRAL.size, true),
    compressedSize: view.getUint32(at + CENTRAL.compressedSize, true),
    headerOffset: view.getUint32(at + CENTRAL.localHeaderOffset, true),
  };
  const extra = cd.subarray(nameAt + nameLength, nameAt + nameLength + extraLength);
  const resolved = resolveZip64(file, name, extra, fields);
  return {
    name,
    flags: view.getUint16(at + CENTRAL.flags, true),
    method: view.getUint16(at + CENTRAL.method, true),
    crc: view.getUint32(at + CENTRAL.crc32, true),
    ...resolved,
    next,
  };
}

interface Sizes {
  size: number;
  compressedSize: number;
  headerOffset: number;
}

/** Replaces 0xFFFFFFFF fields from the zip64 extra, in the order usize, csize, offset. */
function resolveZip64(file: string, name: string, extra: Uint8Array, fields: Sizes): Sizes {
  const wanted = (["size", "compressedSize", "headerOffset"] as const).filter((k) => fields[k] === M32);
  if (wanted.length === 0) {
    return fields;
  }
  const view = viewOf(extra);
  for (let at = 0; at + 4 <= extra.byteLength; ) {
    const id = view.getUint16(at, true);
    const length = view.getUint16(at + 2, true);
    if (id === ZIP64_EXTRA_ID) {
      if (length < wanted.length * 8 || at + 4 + length > extra.byteLength) {
        break;
      }
      const out = { ...fields };
      wanted.forEach((key, i) => {
        out[key] = readU64(file, view, at + 4 + i * 8, `record "${name}" ${key}`);
      });
      return out;
    }
    at += 4 + length;
  }
  throw new ZipDirectoryError(file, `record "${name}" needs a zip64 extra field for ${wanted.join(", ")} but has none`);
}

/** The entry with its data offset, from its local header `local`. */
function withDataOffset(source: ByteSource, entry: ParsedCentral, local: DataView): ZipEntry {
  if (local.getUint32(LOCAL.signature, true) !== SIG.local) {
    throw new ZipLocalHeaderError(source.name, entry.name, entry.headerOffset);
  }
  if (isEncrypted(entry.flags)) {
    throw new ZipUnsupportedError(source.name, entry.name, "the record is encrypted");
  }
  const dataOffset = entry.headerOffset + LOCAL.fixedSize + local.getUint16(LOCAL.nameLength, true) + local.getUint16(LOCAL.extraLength, true);
  if (dataOffset + entry.compressedSize > source.size) {
    throw new ZipRecordBoundsError(source.name, entry.name, dataOffset, entry.compressedSize, source.size);
  }
  const { name, flags, method, crc, compressedSize, size, headerOffset } = entry;
  return { name, flags, method, crc, compressedSize, size, headerOffset, dataOffset };
}
