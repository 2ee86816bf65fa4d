import { ConvertError } from "../../errors.js";

/**
 * Errors of the torch.save (.pt) format: the zip container, the pickle stream and the
 * storages. Every message names the file; pickle errors also name the byte position in
 * data.pkl, storage errors the storage key.
 */

/** No end-of-central-directory record in the last 65 557 bytes: not a zip, or truncated. */
export class ZipNoEndRecordError extends ConvertError {
  readonly code = "torch.zip-no-eocd";
  constructor(readonly file: string) {
    super(`${file}: no zip end-of-central-directory record found; the file is not a torch.save checkpoint or it is truncated`);
  }
}

/** The central directory (or the zip64 records that locate it) is inconsistent or out of bounds. */
export class ZipDirectoryError extends ConvertError {
  readonly code = "torch.zip-bad-directory";
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file}: corrupt zip central directory: ${problem}`);
  }
}

/** A local file header does not start with PK\3\4 where the central directory says it does. */
export class ZipLocalHeaderError extends ConvertError {
  readonly code = "torch.zip-bad-local-header";
  constructor(
    readonly file: string,
    readonly record: string,
    readonly offset: number,
  ) {
    super(`${file}: record "${record}": no local file header signature at offset ${offset}`);
  }
}

/** A record's header or data reaches past the end of the file. */
export class ZipRecordBoundsError extends ConvertError {
  readonly code = "torch.zip-record-out-of-bounds";
  constructor(
    readonly file: string,
    readonly record: string,
    readonly offset: number,
    readonly size: number,
    readonly fileSize: number,
  ) {
    super(`${file}: record "${record}" spans bytes ${offset}..${offset + size} but the file has ${fileSize} bytes; the file is truncated or corrupt`);
  }
}

/** A record that is compressed, encrypted or otherwise not readable in place. */
export class ZipUnsupportedError extends ConvertError {
  readonly code = "torch.zip-unsupported";
  constructor(
    readonly file: string,
    readonly record: string,
    readonly what: string,
  ) {
    super(`${file}: record "${record}": ${what}`);
  }
}

/** Writer side: a record received a different number of bytes than announced. */
export class ZipRecordSizeError extends ConvertError {
  readonly code = "torch.zip-record-size";
  constructor(
    readonly record: string,
    readonly expected: number,
    readonly found: number,
  ) {
    super(`zip record "${record}": announced ${expected} bytes but received ${found}`);
  }
}

/** Entries not all under one top-level folder, or a prefix that cannot be one. */
export class ArchiveLayoutError extends ConvertError {
  readonly code = "torch.bad-layout";
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
  }
}

/** A record torch.load needs (data.pkl, version, data/<key>) is absent. */
export class MissingRecordError extends ConvertError {
  readonly code = "torch.missing-record";
  constructor(
    readonly file: string,
    readonly record: string,
  ) {
    super(`${file}: the archive has no record "${record}"`);
  }
}

/** The `version` record is not an integer 1..10, or `byteorder` is not `little`. */
export class ArchiveVersionError extends ConvertError {
  readonly code = "torch.bad-version";
  constructor(
    readonly file: string,
    readonly record: string,
    readonly found: string,
    readonly expected: string,
  ) {
    super(`${file}: record "${record}" holds ${JSON.stringify(found)}; expected ${expected}`);
  }
}

/** Reader side: record data/<key> does not hold numel * itemsize bytes. */
export class StorageSizeMismatchError extends ConvertError {
  readonly code = "torch.storage-size-mismatch";
  constructor(
    readonly file: string,
    readonly key: string,
    readonly expected: number,
    readonly found: number,
  ) {
    super(`${file}: storage "${key}" (record data/${key}) should hold ${expected} bytes but holds ${found}`);
  }
}

/** Writer side: a storage's data() yielded a different number of bytes than numel * itemsize. */
export class StorageByteCountError extends ConvertError {
  readonly code = "torch.storage-byte-count";
  constructor(
    readonly file: string,
    readonly key: string,
    readonly expected: number,
    readonly found: number,
  ) {
    super(`${file}: storage "${key}" should yield ${expected} bytes but its data yielded ${found}${found > expected ? " or more" : ""}`);
  }
}

/** A tensor whose view does not fit its storage, or with an unsupported dtype or layout. */
export class TensorLayoutError extends ConvertError {
  readonly code = "torch.bad-tensor";
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
  }
}

/** Writer side: a value the pickler cannot represent (a fractional JS number, a TensorRef ...). */
export class UnpicklableValueError extends ConvertError {
  readonly code = "torch.unpicklable-value";
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file}: cannot write ${problem}`);
  }
}

/** The pickle refers to a global outside the allow-list; nothing was executed. */
export class ForbiddenGlobalError extends ConvertError {
  readonly code = "torch.pickle-forbidden-global";
  constructor(
    readonly file: string,
    readonly global: string,
    readonly position: number,
  ) {
    super(`${file}: data.pkl byte ${position}: refers to the global "${global}", which a checkpoint reader does not allow; nothing was executed`, {
      hint: "only tensors, storages, containers, argparse.Namespace and a few opaque helper types are accepted",
    });
  }
}

/** The pickle exceeds a PickleLimits bound (nesting, memo, objects, string length). */
export class PickleLimitError extends ConvertError {
  readonly code = "torch.pickle-limit";
  constructor(
    readonly file: string,
    readonly limit: string,
    readonly max: number,
    readonly position: number,
  ) {
    super(`${file}: data.pkl byte ${position}: exceeds the limit ${limit} = ${max}`);
  }
}

/** The pickle ends before STOP or an argument runs past its end. */
export class PickleTruncatedError extends ConvertError {
  readonly code = "torch.pickle-truncated";
  constructor(
    readonly file: string,
    readonly position: number,
    readonly what: string,
  ) {
    super(`${file}: data.pkl ends at byte ${position} while reading ${what}; the pickle is truncated`);
  }
}

/** An unknown opcode, a stack or memo mistake, or a value of the wrong kind. */
export class PickleMalformedError extends ConvertError {
  readonly code = "torch.pickle-malformed";
  constructor(
    readonly file: string,
    readonly position: number,
    readonly problem: string,
  ) {
    super(`${file}: data.pkl byte ${position}: ${problem}`);
  }
}
