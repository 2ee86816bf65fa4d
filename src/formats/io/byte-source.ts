/**
 * Random access to the bytes of one file (local, or remote through ranged requests).
 * `read` returns exactly `length` bytes or throws EndOfFileError.
 */
export interface ByteSource {
  /** Shown in errors: a path or a URL. */
  readonly name: string;
  readonly size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
  close(): Promise<void>;
}
