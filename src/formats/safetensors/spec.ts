/**
 * The safetensors format as constants (shared/torch-format.md §5; huggingface/safetensors README).
 *
 * File layout:
 *   offset  size     field
 *   0       8        N: u64 little-endian, the header length in bytes
 *   8       N        header: UTF-8 JSON object, starts with '{', padded with spaces so (8 + N) % 8 == 0
 *   8 + N   rest     data buffer: tensors' raw little-endian row-major bytes, tiling it with no holes
 *
 * Header JSON:
 *   { "__metadata__": { "<key>": "<string>", ... },                     optional, string -> string
 *     "<tensor>": { "dtype": "BF16", "shape": [2, 3], "data_offsets": [begin, end] }, ... }
 *   data_offsets are relative to the data buffer (file offset = 8 + N + begin), end exclusive.
 */

/** Bytes of the u64 header-length prefix. */
export const LENGTH_PREFIX_BYTES = 8;

/** Largest header the reference reader accepts (safetensors `MAX_HEADER_SIZE`). */
export const MAX_HEADER_BYTES = 100_000_000;

/** The data buffer starts on a multiple of this (the reference writer pads the header to it). */
export const HEADER_ALIGN = 8;

/** Header padding byte: an ASCII space, which JSON parsers skip as trailing whitespace. */
export const HEADER_PAD_BYTE = 0x20;

/** The reserved header key holding the string -> string metadata map. */
export const METADATA_KEY = "__metadata__";

/** What HF writers put in `__metadata__`; transformers refuses files without a known format. */
export const DEFAULT_METADATA: Readonly<Record<string, string>> = { format: "pt" };

/**
 * Every dtype name of the reference implementation, in its enum order (ascending). The reference
 * writer lays tensors out by this order descending, then by name. Names missing from
 * model/tensor.ts DTYPE_BYTES (sub-byte and exotic float8 kinds) are rejected as unsupported.
 */
export const REFERENCE_DTYPE_ORDER = [
  "BOOL",
  "F4",
  "F6_E2M3",
  "F6_E3M2",
  "U8",
  "I8",
  "F8_E5M2",
  "F8_E4M3",
  "F8_E8M0",
  "F8_E4M3FNUZ",
  "F8_E5M2FNUZ",
  "I16",
  "U16",
  "F16",
  "BF16",
  "I32",
  "U32",
  "F32",
  "C64",
  "F64",
  "I64",
  "U64",
] as const;

/** The single-file checkpoint name of an HF model folder. */
export const SINGLE_FILE_NAME = "model.safetensors";

/** The shard index of a sharded HF model folder. */
export const INDEX_FILE_NAME = "model.safetensors.index.json";

/** Extension of safetensors files. */
export const FILE_EXTENSION = ".safetensors";

/** Shard `index` (0-based) of `count`: `model-00001-of-00003.safetensors`, as transformers names them. */
export function shardFileName(index: number, count: number): string {
  const pad = (n: number): string => String(n).padStart(5, "0");
  return `model-${pad(index + 1)}-of-${pad(count)}${FILE_EXTENSION}`;
}
