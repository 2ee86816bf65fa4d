import { crc32 } from "./crc32.js";
import { buildCentralHeader, buildDescriptor, buildEndRecords, buildLocalHeader, zip64Need, type CentralEntry } from "./records.js";
import { ZipRecordSizeError } from "../errors.js";

/** Where the archive goes: bytes are written in order (FileSink fits). */
export interface ZipSink {
  write(bytes: Uint8Array): Promise<void>;
}

export interface ZipWriterOptions {
  /** Test hook: put zip64 extras (and 24-byte descriptors) on every record. */
  readonly forceZip64?: boolean;
}

const MAX_NAME_BYTES = 0xffff;

/**
 * A streaming zip writer that lays records out exactly as torch.save (miniz) does: stored,
 * data aligned to 64 bytes by an FB padding extra, CRC and sizes in a data descriptor, zip64
 * extras for sizes or offsets >= 0xFFFFFFFF, and always the zip64 end records
 * (torch-format.md 1.2-1.5). Records are written in the order they are added.
 */
export class ZipWriter {
  private position = 0;
  private readonly central: CentralEntry[] = [];
  private finished = false;

  constructor(
    private readonly sink: ZipSink,
    private readonly options: ZipWriterOptions = {},
  ) {}

  /** Bytes written so far (the offset of the next record). */
  get bytesWritten(): number {
    return this.position;
  }

  /**
   * Writes one record whose size is known in advance. `data` may be the bytes themselves or
   * an async iterable of chunks; a different total is a ZipRecordSizeError.
   */
  async add(name: string, size: number, data: Uint8Array | AsyncIterable<Uint8Array>): Promise<void> {
    if (this.finished) {
      throw new Error("ZipWriter.add after finish");
    }
    const nameBytes = new TextEncoder().encode(name);
    if (nameBytes.byteLength > MAX_NAME_BYTES || !Number.isSafeInteger(size) || size < 0) {
      throw new RangeError(`zip record "${name}": name of ${nameBytes.byteLength} bytes or size ${size} out of range`);
    }
    const headerOffset = this.position;
    const need = zip64Need(size, headerOffset, this.options.forceZip64 === true);
    await this.emit(buildLocalHeader(nameBytes, size, headerOffset, this.options.forceZip64 === true));
    let crc = 0;
    let written = 0;
    for await (const chunk of data instanceof Uint8Array ? [data] : data) {
      written += chunk.byteLength;
      if (written > size) {
        throw new ZipRecordSizeError(name, size, written);
      }
      crc = crc32(chunk, crc);
      await this.emit(chunk);
    }
    if (written !== size) {
      throw new ZipRecordSizeError(name, size, written);
    }
    if (size > 0) {
      await this.emit(buildDescriptor(crc, size, need));
    }
    this.central.push({ name: nameBytes, crc, size, headerOffset, need });
  }

  /** Writes the central directory and the end records. */
  async finish(): Promise<void> {
    this.finished = true;
    const cdOffset = this.position;
    for (const entry of this.central) {
      await this.emit(buildCentralHeader(entry));
    }
    await this.emit(buildEndRecords(this.central.length, this.position - cdOffset, cdOffset));
  }

  private async emit(bytes: Uint8Array): Promise<void> {
    await this.sink.write(bytes);
    this.position += bytes.byteLength;
  }
}
