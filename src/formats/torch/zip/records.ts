/**
 * The zip records torch.save writes (PKWARE APPNOTE 4.3; torch-format.md 1.2-1.5), each laid
 * out once as an offset table that both the reader and the writer use. All integers are
 * little-endian. `M32` (0xFFFFFFFF) is the zip64 threshold: miniz compares with >=.
 */

export const M32 = 0xffffffff;
const M16 = 0xffff;

export const SIG = {
  local: 0x04034b50, // PK\3\4
  descriptor: 0x08074b50, // PK\7\8
  central: 0x02014b50, // PK\1\2
  zip64End: 0x06064b50, // PK\6\6
  zip64Locator: 0x07064b50, // PK\6\7
  end: 0x06054b50, // PK\5\6
} as const;

export const FLAG_DESCRIPTOR = 0x0008; // bit 3: crc and sizes follow the data
export const FLAG_UTF8 = 0x0800; // bit 11: name is UTF-8
const FLAG_ENCRYPTED = 0x0001;
export const ZIP64_EXTRA_ID = 0x0001;
const PADDING_EXTRA_ID = 0x4246; // "FB"
const PADDING_BYTE = 0x5a; // "Z"
export const DATA_ALIGNMENT = 64;

/** Local file header, 30 bytes + name + extra. */
export const LOCAL = {
  signature: 0, // u32 PK\3\4
  versionNeeded: 4, // u16 0
  flags: 6, // u16 0x0808, 0x0800 for an empty record
  method: 8, // u16 0 = stored
  time: 10, // u16 0
  date: 12, // u16 0
  crc32: 14, // u32 0 (real value in the descriptor and central directory)
  compressedSize: 18, // u32 0
  size: 22, // u32 0, even for zip64 records
  nameLength: 26, // u16
  extraLength: 28, // u16 zip64 extra (if any) + FB padding extra
  fixedSize: 30,
} as const;

/** Data descriptor: 16 bytes, or 24 with u64 sizes when the record is zip64. */
export const DESCRIPTOR = {
  signature: 0, // u32 PK\7\8
  crc32: 4, // u32
  compressedSize: 8, // u32 | u64
  // size: 12 (u32) | 16 (u64)
  fixedSize: 16,
  zip64Size: 24,
} as const;

/** Central directory header, 46 bytes + name + extra (no padding). */
export const CENTRAL = {
  signature: 0, // u32 PK\1\2
  versionMadeBy: 4, // u16 0
  versionNeeded: 6, // u16 0
  flags: 8, // u16 as in the local header
  method: 10, // u16 0
  time: 12, // u16 0
  date: 14, // u16 0
  crc32: 16, // u32 (0 for empty records)
  compressedSize: 20, // u32, M32 when in the zip64 extra
  size: 24, // u32, M32 when in the zip64 extra
  nameLength: 28, // u16
  extraLength: 30, // u16 zip64 extra or 0
  commentLength: 32, // u16 0
  diskStart: 34, // u16 0
  internalAttributes: 36, // u16 0
  externalAttributes: 38, // u32 0
  localHeaderOffset: 42, // u32, M32 when in the zip64 extra
  fixedSize: 46,
} as const;

/** zip64 end of central directory record, 56 bytes. */
export const ZIP64_END = {
  signature: 0, // u32 PK\6\6
  recordSize: 4, // u64 44 (size of the rest)
  versionMadeBy: 12, // u16 0x031E
  versionNeeded: 14, // u16 45
  disk: 16, // u32 0
  cdDisk: 20, // u32 0
  entriesOnDisk: 24, // u64
  entries: 32, // u64
  cdSize: 40, // u64
  cdOffset: 48, // u64
  fixedSize: 56,
} as const;

/** zip64 end of central directory locator, 20 bytes, right before the EOCD. */
export const ZIP64_LOCATOR = {
  signature: 0, // u32 PK\6\7
  disk: 4, // u32 0
  zip64EndOffset: 8, // u64
  disks: 16, // u32 1
  fixedSize: 20,
} as const;

/** End of central directory record, 22 bytes + comment. */
export const END = {
  signature: 0, // u32 PK\5\6
  disk: 4, // u16 0
  cdDisk: 6, // u16 0
  entriesOnDisk: 8, // u16 min(n, 0xFFFF)
  entries: 10, // u16 min(n, 0xFFFF)
  cdSize: 12, // u32 min(size, M32)
  cdOffset: 16, // u32 min(offset, M32)
  commentLength: 20, // u16
  fixedSize: 22,
} as const;

export function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function u64(view: DataView, at: number, value: number): void {
  view.setBigUint64(at, BigInt(value), true);
}

/** Which fields of a record go to the zip64 extra: big = size >= M32, far = header offset >= M32. */
export interface Zip64Need {
  readonly big: boolean;
  readonly far: boolean;
}

export function zip64Need(size: number, headerOffset: number, force = false): Zip64Need {
  return { big: force || size >= M32, far: force || headerOffset >= M32 };
}

/** zip64 extra: id 1, u16 body length, [u64 usize, u64 csize] if big, [u64 offset] if far. */
function zip64Extra(need: Zip64Need, first: number, second: number, offset: number): Uint8Array {
  if (!need.big && !need.far) {
    return new Uint8Array(0);
  }
  const body = (need.big ? 16 : 0) + (need.far ? 8 : 0);
  const out = new Uint8Array(4 + body);
  const view = viewOf(out);
  view.setUint16(0, ZIP64_EXTRA_ID, true);
  view.setUint16(2, body, true);
  if (need.big) {
    u64(view, 4, first);
    u64(view, 12, second);
  }
  if (need.far) {
    u64(view, 4 + (need.big ? 16 : 0), offset);
  }
  return out;
}

/** Padding so that the data starts at a multiple of 64 (torch-format.md 1.2). */
export function paddingLength(headerOffset: number, nameLength: number, zip64ExtraLength: number): number {
  const start = headerOffset + LOCAL.fixedSize + nameLength + zip64ExtraLength + 4;
  return (DATA_ALIGNMENT - (start % DATA_ALIGNMENT)) % DATA_ALIGNMENT;
}

/** The local header of a stored record with FB padding; data begins right after it. */
export function buildLocalHeader(name: Uint8Array, size: number, headerOffset: number, force = false): Uint8Array {
  const need = zip64Need(size, headerOffset, force);
  const z64 = zip64Extra(need, size, 0, headerOffset);
  const pad = paddingLength(headerOffset, name.byteLength, z64.byteLength);
  const extraLength = z64.byteLength + 4 + pad;
  const out = new Uint8Array(LOCAL.fixedSize + name.byteLength + extraLength);
  const view = viewOf(out);
  view.setUint32(LOCAL.signature, SIG.local, true);
  view.setUint16(LOCAL.flags, flagsFor(size), true);
  view.setUint16(LOCAL.nameLength, name.byteLength, true);
  view.setUint16(LOCAL.extraLength, extraLength, true);
  out.set(name, LOCAL.fixedSize);
  const extraAt = LOCAL.fixedSize + name.byteLength;
  out.set(z64, extraAt);
  view.setUint16(extraAt + z64.byteLength, PADDING_EXTRA_ID, true);
  view.setUint16(extraAt + z64.byteLength + 2, pad, true);
  out.fill(PADDING_BYTE, extraAt + z64.byteLength + 4);
  return out;
}

export function flagsFor(size: number): number {
  return size > 0 ? FLAG_UTF8 | FLAG_DESCRIPTOR : FLAG_UTF8;
}

/** Data descriptor after a non-empty record (u64 sizes if the record is zip64 by size or offset). */
export function buildDescriptor(crc: number, size: number, need: Zip64Need): Uint8Array {
  const wide = need.big || need.far;
  const out = new Uint8Array(wide ? DESCRIPTOR.zip64Size : DESCRIPTOR.fixedSize);
  const view = viewOf(out);
  view.setUint32(DESCRIPTOR.signature, SIG.descriptor, true);
  view.setUint32(DESCRIPTOR.crc32, crc, true);
  if (wide) {
    u64(view, DESCRIPTOR.compressedSize, size);
    u64(view, DESCRIPTOR.compressedSize + 8, size);
  } else {
    view.setUint32(DESCRIPTOR.compressedSize, size, true);
    view.setUint32(DESCRIPTOR.compressedSize + 4, size, true);
  }
  return out;
}

export interface CentralEntry {
  readonly name: Uint8Array;
  readonly crc: number;
  readonly size: number;
  readonly headerOffset: number;
  readonly need: Zip64Need;
}

export function buildCentralHeader(entry: CentralEntry): Uint8Array {
  const { need, size, headerOffset } = entry;
  const z64 = zip64Extra(need, size, size, headerOffset);
  const out = new Uint8Array(CENTRAL.fixedSize + entry.name.byteLength + z64.byteLength);
  const view = viewOf(out);
  view.setUint32(CENTRAL.signature, SIG.central, true);
  view.setUint16(CENTRAL.flags, flagsFor(size), true);
  view.setUint32(CENTRAL.crc32, entry.crc, true);
  view.setUint32(CENTRAL.compressedSize, need.big ? M32 : size, true);
  view.setUint32(CENTRAL.size, need.big ? M32 : size, true);
  view.setUint16(CENTRAL.nameLength, entry.name.byteLength, true);
  view.setUint16(CENTRAL.extraLength, z64.byteLength, true);
  view.setUint32(CENTRAL.localHeaderOffset, need.far ? M32 : headerOffset, true);
  out.set(entry.name, CENTRAL.fixedSize);
  out.set(z64, CENTRAL.fixedSize + entry.name.byteLength);
  return out;
}

/** zip64 EOCD + locator + EOCD, always written (torch-format.md 1.5). */
export function buildEndRecords(entries: number, cdSize: number, cdOffset: number): Uint8Array {
  const out = new Uint8Array(ZIP64_END.fixedSize + ZIP64_LOCATOR.fixedSize + END.fixedSize);
  const view = viewOf(out);
  const zip64EndOffset = cdOffset + cdSize;
  view.setUint32(ZIP64_END.signature, SIG.zip64End, true);
  u64(view, ZIP64_END.recordSize, ZIP64_END.fixedSize - 12);
  view.setUint16(ZIP64_END.versionMadeBy, 0x031e, true);
  view.setUint16(ZIP64_END.versionNeeded, 45, true);
  u64(view, ZIP64_END.entriesOnDisk, entries);
  u64(view, ZIP64_END.entries, entries);
  u64(view, ZIP64_END.cdSize, cdSize);
  u64(view, ZIP64_END.cdOffset, cdOffset);
  const loc = ZIP64_END.fixedSize;
  view.setUint32(loc + ZIP64_LOCATOR.signature, SIG.zip64Locator, true);
  u64(view, loc + ZIP64_LOCATOR.zip64EndOffset, zip64EndOffset);
  view.setUint32(loc + ZIP64_LOCATOR.disks, 1, true);
  const end = loc + ZIP64_LOCATOR.fixedSize;
  view.setUint32(end + END.signature, SIG.end, true);
  view.setUint16(end + END.entriesOnDisk, Math.min(entries, M16), true);
  view.setUint16(end + END.entries, Math.min(entries, M16), true);
  view.setUint32(end + END.cdSize, Math.min(cdSize, M32), true);
  view.setUint32(end + END.cdOffset, Math.min(cdOffset, M32), true);
  return out;
}

export function isEncrypted(flags: number): boolean {
  return (flags & FLAG_ENCRYPTED) !== 0;
}
