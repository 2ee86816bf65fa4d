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
  /** Reads many small ranges (a zip's local headers), each into a new array, in one call. */
  readRanges?(ranges: readonly ByteRange[]): Promise<Uint8Array[]>;
  close(): Promise<void>;
}

export interface ByteRange {
  readonly offset: number;
  readonly length: number;
}

/** `ranges` of `source`, each into a new array: in one call where the source can, else one after another. */
export async function readRanges(source: ByteSource, ranges: readonly ByteRange[]): Promise<Uint8Array[]> {
  if (source.readRanges !== undefined) {
    return source.readRanges(ranges);
  }
  const out: Uint8Array[] = [];
  for (const { offset, length } of ranges) {
    out.push(await source.read(offset, length));
  }
  return out;
}
