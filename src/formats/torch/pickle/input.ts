import { PickleLimitError, PickleTruncatedError } from "../errors.js";

const NEWLINE = 0x0a;

/** A bounds-checked cursor over data.pkl; every read past the end is a PickleTruncatedError. */
export class PickleInput {
  private at = 0;
  private readonly view: DataView;

  constructor(
    private readonly bytes: Uint8Array,
    readonly file: string,
    private readonly maxStringBytes: number,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get position(): number {
    return this.at;
  }

  get remaining(): number {
    return this.bytes.byteLength - this.at;
  }

  u8(what: string): number {
    this.need(1, what);
    const value = this.view.getUint8(this.at);
    this.at += 1;
    return value;
  }

  u16(what: string): number {
    this.need(2, what);
    const value = this.view.getUint16(this.at, true);
    this.at += 2;
    return value;
  }

  u32(what: string): number {
    this.need(4, what);
    const value = this.view.getUint32(this.at, true);
    this.at += 4;
    return value;
  }

  i32(what: string): number {
    this.need(4, what);
    const value = this.view.getInt32(this.at, true);
    this.at += 4;
    return value;
  }

  /** u64 length; anything beyond the input is reported as truncation before any conversion. */
  u64(what: string): number {
    this.need(8, what);
    const value = this.view.getBigUint64(this.at, true);
    this.at += 8;
    return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(value);
  }

  f64be(what: string): number {
    this.need(8, what);
    const value = this.view.getFloat64(this.at, false);
    this.at += 8;
    return value;
  }

  /** `length` bytes (a view, not a copy), checked against the limit and the rest of the input. */
  take(length: number, what: string): Uint8Array {
    this.need(length, what);
    if (length > this.maxStringBytes) {
      throw new PickleLimitError(this.file, "maxStringBytes", this.maxStringBytes, this.at);
    }
    const out = this.bytes.subarray(this.at, this.at + length);
    this.at += length;
    return out;
  }

  /** Bytes up to the next newline (not included), for the protocol-0 text opcodes. */
  line(what: string): Uint8Array {
    const end = this.bytes.indexOf(NEWLINE, this.at);
    if (end < 0) {
      throw new PickleTruncatedError(this.file, this.bytes.byteLength, what);
    }
    const out = this.take(end - this.at, what);
    this.at += 1;
    return out;
  }

  private need(length: number, what: string): void {
    if (length < 0 || length > this.remaining) {
      throw new PickleTruncatedError(this.file, this.bytes.byteLength, what);
    }
  }
}
