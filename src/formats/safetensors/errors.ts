import { ConvertError } from "../../errors.js";
import { formatShape } from "../../model/tensor.js";

/**
 * One class per safetensors failure (the reference crate's `SafeTensorError` variants, split
 * further where a user would act differently). Every message starts with the file.
 */
export abstract class SafetensorsError extends ConvertError {
  constructor(
    readonly file: string,
    detail: string,
    options?: { cause?: unknown; hint?: string },
  ) {
    super(`${file}: ${detail}`, options);
  }
}

export class HeaderTooLargeError extends SafetensorsError {
  readonly code = "safetensors.header-too-large";
  constructor(file: string, readonly found: bigint, readonly limit: number) {
    super(file, `header length ${found} exceeds the limit of ${limit} bytes; this is not a safetensors file or it is corrupt`);
  }
}

export class HeaderPastEndError extends SafetensorsError {
  readonly code = "safetensors.header-past-end";
  constructor(file: string, readonly headerLength: number, readonly fileSize: number) {
    super(file, `header length ${headerLength} needs at least ${8 + headerLength} bytes but the file has ${fileSize}`);
  }
}

export class TruncatedFileError extends SafetensorsError {
  readonly code = "safetensors.truncated";
  constructor(file: string, readonly expected: number, readonly found: number) {
    super(file, `the file has ${found} bytes but its header describes ${expected}; the file is truncated`, {
      hint: "download or copy the file again",
    });
  }
}

export class TrailingBytesError extends SafetensorsError {
  readonly code = "safetensors.trailing-bytes";
  constructor(file: string, readonly expected: number, readonly found: number) {
    super(file, `the file has ${found} bytes but its header describes ${expected}; ${found - expected} bytes after the last tensor`);
  }
}

export class BadJsonError extends SafetensorsError {
  readonly code = "safetensors.bad-json";
  constructor(file: string, readonly reason: string, cause?: unknown) {
    super(file, `the header is not a JSON object: ${reason}`, { cause });
  }
}

export class BadMetadataError extends SafetensorsError {
  readonly code = "safetensors.bad-metadata";
  constructor(file: string, readonly reason: string) {
    super(file, `"__metadata__" must map strings to strings: ${reason}`);
  }
}

/** A header entry whose fields are missing or of the wrong kind. */
export class BadEntryError extends SafetensorsError {
  readonly code = "safetensors.bad-entry";
  constructor(file: string, readonly tensor: string, readonly reason: string) {
    super(file, `tensor ${JSON.stringify(tensor)}: ${reason}`);
  }
}

export class UnknownDtypeError extends SafetensorsError {
  readonly code = "safetensors.unknown-dtype";
  constructor(file: string, readonly tensor: string, readonly dtype: string, readonly knownToFormat: boolean) {
    super(
      file,
      knownToFormat
        ? `tensor ${JSON.stringify(tensor)} has dtype ${dtype}, which megatron-convert does not support`
        : `tensor ${JSON.stringify(tensor)} has unknown dtype ${JSON.stringify(dtype)}`,
    );
  }
}

export class OffsetGapError extends SafetensorsError {
  readonly code = "safetensors.offset-gap";
  constructor(
    file: string,
    readonly tensor: string,
    readonly previous: string | undefined,
    readonly expected: number,
    readonly found: number,
  ) {
    const after = previous === undefined ? "the data buffer starts there" : `tensor ${JSON.stringify(previous)} ends there`;
    super(file, `tensor ${JSON.stringify(tensor)} starts at byte ${found} of the data buffer; expected ${expected} (${after}), leaving a gap`);
  }
}

export class OffsetOverlapError extends SafetensorsError {
  readonly code = "safetensors.offset-overlap";
  constructor(
    file: string,
    readonly tensor: string,
    readonly previous: string,
    readonly expected: number,
    readonly found: number,
  ) {
    super(
      file,
      `tensor ${JSON.stringify(tensor)} starts at byte ${found} of the data buffer, inside tensor ${JSON.stringify(previous)} which ends at ${expected}`,
    );
  }
}

export class ByteLengthMismatchError extends SafetensorsError {
  readonly code = "safetensors.byte-length-mismatch";
  constructor(
    file: string,
    readonly tensor: string,
    readonly description: string,
    readonly expected: number,
    readonly found: number,
  ) {
    super(file, `tensor ${JSON.stringify(tensor)} is ${description} = ${expected} bytes but data_offsets span ${found}`);
  }

  static of(file: string, tensor: string, dtype: string, shape: readonly number[], expected: number, found: number): ByteLengthMismatchError {
    return new ByteLengthMismatchError(file, tensor, `${dtype}${formatShape(shape)}`, expected, found);
  }
}

export class DuplicateTensorError extends SafetensorsError {
  readonly code = "safetensors.duplicate-tensor";
  constructor(file: string, readonly tensor: string, readonly otherFile?: string) {
    super(file, `tensor ${JSON.stringify(tensor)} appears twice${otherFile === undefined ? "" : ` (also in ${otherFile})`}`);
  }
}

export class RangeOutOfBoundsError extends SafetensorsError {
  readonly code = "safetensors.range-out-of-bounds";
  constructor(file: string, readonly tensor: string, readonly offset: number, readonly length: number, readonly byteLength: number) {
    super(file, `cannot read ${length} bytes at offset ${offset} of tensor ${JSON.stringify(tensor)}, which has ${byteLength} bytes`);
  }
}

/** A writer's payload yielded more or fewer bytes than its spec describes. */
export class PayloadLengthError extends SafetensorsError {
  readonly code = "safetensors.payload-length";
  constructor(file: string, readonly tensor: string, readonly expected: number, readonly found: number, exceeded: boolean) {
    super(file, `tensor ${JSON.stringify(tensor)} should have ${expected} bytes but its data yielded ${exceeded ? "at least " : ""}${found}`);
  }
}

export class NoSafetensorsError extends SafetensorsError {
  readonly code = "safetensors.no-files";
  constructor(dir: string) {
    super(dir, "no model.safetensors.index.json, model.safetensors or *.safetensors file found", {
      hint: "point at a HuggingFace model folder saved with safetensors (save_pretrained(..., safe_serialization=True))",
    });
  }
}

export class ShardSizeError extends SafetensorsError {
  readonly code = "safetensors.bad-shard-size";
  constructor(dir: string, readonly value: number) {
    super(dir, `the maximum shard size must be a positive whole number of bytes, not ${value}`);
  }
}

export class IndexBadError extends SafetensorsError {
  readonly code = "safetensors.index-bad";
  constructor(file: string, readonly reason: string, cause?: unknown) {
    super(file, `not a valid safetensors index: ${reason}`, { cause });
  }
}

export class IndexMissingShardError extends SafetensorsError {
  readonly code = "safetensors.index-missing-shard";
  constructor(file: string, readonly shard: string, readonly path: string) {
    super(file, `weight_map names shard ${JSON.stringify(shard)} but ${path} does not exist`, {
      hint: "the download is incomplete; fetch every shard listed in the index",
    });
  }
}

/** A placement of a tensor in a shard, for index cross-checks. */
export interface TensorPlacement {
  readonly tensor: string;
  readonly shard: string;
}

export class TensorNotFoundError extends SafetensorsError {
  readonly code = "safetensors.tensor-not-found";
  constructor(file: string, readonly missing: readonly TensorPlacement[]) {
    super(file, `${missing.length} tensor(s) in weight_map are not in the shard named for them: ${listPlacements(missing)}`);
  }
}

export class IndexIncompleteError extends SafetensorsError {
  readonly code = "safetensors.index-incomplete";
  constructor(file: string, readonly unlisted: readonly TensorPlacement[]) {
    super(file, `${unlisted.length} tensor(s) stored in shards are not mapped to them by weight_map: ${listPlacements(unlisted)}`);
  }
}

const LISTED_MAX = 10;

function listPlacements(items: readonly TensorPlacement[]): string {
  const shown = items.slice(0, LISTED_MAX).map((p) => `${JSON.stringify(p.tensor)} (${p.shard})`);
  const more = items.length > LISTED_MAX ? `, and ${items.length - LISTED_MAX} more` : "";
  return shown.join(", ") + more;
}
