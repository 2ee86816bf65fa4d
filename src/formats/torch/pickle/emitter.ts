import { ByteBuilder } from "./byte-builder.js";
import { encodeLong } from "./longs.js";
import { OP } from "./opcodes.js";

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/**
 * The protocol-2 primitives of CPython's C pickler: memo numbering (BINPUT/LONG_BINPUT in
 * first-use order), memoized globals, strings, and the smallest int opcode for each value.
 */
export class Emitter {
  readonly out = new ByteBuilder();
  private readonly memo = new Map<unknown, number>();
  private memoCount = 0;

  /** Memoizes the value just written under `key` (a fresh slot when key is undefined). */
  put(key?: unknown): void {
    const index = this.memoCount;
    this.memoCount += 1;
    if (key !== undefined) {
      this.memo.set(key, index);
    }
    if (index < 256) {
      this.out.byte(OP.BINPUT);
      this.out.byte(index);
    } else {
      this.out.byte(OP.LONG_BINPUT);
      this.out.u32(index);
    }
  }

  /** Writes BINGET for a memoized key; false when it is not memoized. */
  get(key: unknown): boolean {
    const index = this.memo.get(key);
    if (index === undefined) {
      return false;
    }
    if (index < 256) {
      this.out.byte(OP.BINGET);
      this.out.byte(index);
    } else {
      this.out.byte(OP.LONG_BINGET);
      this.out.u32(index);
    }
    return true;
  }

  global(module: string, name: string): void {
    const key = `g\0${module}\0${name}`;
    if (this.get(key)) {
      return;
    }
    this.out.byte(OP.GLOBAL);
    this.out.bytes(new TextEncoder().encode(`${module}\n${name}\n`));
    this.put(key);
  }

  /** A string; with `shared`, repeated occurrences become BINGET (torch reuses those objects). */
  string(value: string, shared = false): void {
    const key = `s\0${value}`;
    if (shared && this.get(key)) {
      return;
    }
    const bytes = new TextEncoder().encode(value);
    this.out.byte(OP.BINUNICODE);
    this.out.u32(bytes.byteLength);
    this.out.bytes(bytes);
    this.put(shared ? key : undefined);
  }

  integer(value: number | bigint): void {
    if (typeof value === "number" && value >= 0 && value < 256) {
      this.out.byte(OP.BININT1);
      this.out.byte(value);
    } else if (typeof value === "number" && value >= 0 && value < 65536) {
      this.out.byte(OP.BININT2);
      this.out.u16(value);
    } else if (typeof value === "number" && value >= INT32_MIN && value <= INT32_MAX) {
      this.out.byte(OP.BININT);
      this.out.i32(value);
    } else {
      const bytes = encodeLong(BigInt(value));
      if (bytes.byteLength < 256) {
        this.out.byte(OP.LONG1);
        this.out.byte(bytes.byteLength);
      } else {
        this.out.byte(OP.LONG4);
        this.out.i32(bytes.byteLength);
      }
      this.out.bytes(bytes);
    }
  }
}
