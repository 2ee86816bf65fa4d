/**
 * Random access to the bytes of one file (local, or remote through ranged requests).
 * `read` returns exactly `length` bytes, in a new array the caller owns (it may write into it, as
 * readMatrixRect does), or throws EndOfFileError.
 */
export interface ByteSource {
  /** Shown in errors: a path or a URL. */
  readonly name: string;
  readonly size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Fills `target` completely from `offset` (a read into a buffer the caller reuses). */
  readInto?(target: Uint8Array, offset: number): Promise<void>;
  close(): Promise<void>;
}
