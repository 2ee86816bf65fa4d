/**
 * Tensor descriptions shared by every room. Dtype names are the safetensors spellings,
 * which every other format maps onto (torch storage classes, config.json "torch_dtype").
 */
export const DTYPE_BYTES = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
  C64: 8,
} as const;

export type Dtype = keyof typeof DTYPE_BYTES;

export function isDtype(value: string): value is Dtype {
  return Object.prototype.hasOwnProperty.call(DTYPE_BYTES, value);
}

export function dtypeBytes(dtype: Dtype): number {
  return DTYPE_BYTES[dtype];
}

export interface TensorSpec {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
}

/** A tensor whose bytes lie contiguously (row-major) in a file. */
export interface StoredTensor extends TensorSpec {
  /** Path of the file that holds the bytes, shown in errors. */
  readonly file: string;
  /** Absolute byte offset of the first element in `file`. */
  readonly dataOffset: number;
  readonly byteLength: number;
}

export function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    n *= d;
  }
  return n;
}

export function byteLengthOf(spec: Pick<TensorSpec, "dtype" | "shape">): number {
  return numelOf(spec.shape) * dtypeBytes(spec.dtype);
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((n, i) => n === b[i]);
}
