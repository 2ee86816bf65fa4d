import { ConvertError } from "../errors.js";
import type { ByteSource } from "../formats/io/byte-source.js";

/**
 * The byte-level steps every exact comparison shares: filling a reused buffer from a source,
 * finding where two byte ranges first differ, and the error for a rank file that changed under
 * the check. Kept apart from the tensor and plan code so that
 * `verify <hf-dir> <hf-dir>` loads only what it uses.
 */

/** Fills `into` from `offset` of `source`, through readInto where the source has it. */
export async function readStored(source: ByteSource, offset: number, into: Uint8Array): Promise<Uint8Array> {
  if (source.readInto === undefined) {
    into.set(await source.read(offset, into.byteLength));
  } else {
    await source.readInto(into, offset);
  }
  return into;
}

/** Where `length` bytes of `a` from `aAt` and of `b` from `bAt` first differ; `length` when they are equal. */
export function firstDifference(a: Buffer, aAt: number, b: Uint8Array, bAt: number, length: number): number {
  if (a.compare(b, bAt, bAt + length, aAt, aAt + length) === 0) {
    return length;
  }
  for (let i = 0; i < length; i++) {
    if (a[aAt + i] !== b[bAt + i]) {
      return i;
    }
  }
  return length;
}

/** A Buffer over the same bytes (for its native compare), without a copy. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * A rank file being checked no longer holds what its header said when verify read it: something
 * wrote to it during the check.
 */
export class InputChangedError extends ConvertError {
  readonly code = "verify.file-changed";
  constructor(file: string, key: string) {
    super(`${file}: ${key} is no longer the tensor its header named when verify started; the file changed during the check`, {
      hint: "verify a checkpoint nothing is writing to",
    });
  }
}
