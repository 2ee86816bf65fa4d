import { ConvertError } from "../../errors.js";

export class EndOfFileError extends ConvertError {
  readonly code = "io.end-of-file";
  constructor(
    readonly file: string,
    readonly offset: number,
    readonly wanted: number,
    readonly got: number,
  ) {
    super(`${file}: wanted ${wanted} bytes at offset ${offset} but the file ends after ${got}; the file is truncated`);
  }
}

export class FileAccessError extends ConvertError {
  readonly code = "io.access";
  constructor(
    readonly file: string,
    readonly operation: string,
    cause: unknown,
  ) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(`${file}: cannot ${operation}: ${reason}`, { cause });
  }
}
