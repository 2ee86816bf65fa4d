import type { Dtype } from "../../model/tensor.js";

/**
 * Dtype <-> torch names (torch-format.md 2.2). Dtypes with a legacy storage class are written
 * with `_rebuild_tensor_v2` and load in torch 1.13; the others need `_rebuild_tensor_v3` and
 * `torch.storage.UntypedStorage` (numel in bytes), torch >= 2.1.
 */
const LEGACY_STORAGE: Partial<Record<Dtype, string>> = {
  F32: "FloatStorage",
  F16: "HalfStorage",
  BF16: "BFloat16Storage",
  F64: "DoubleStorage",
  I64: "LongStorage",
  I32: "IntStorage",
  I16: "ShortStorage",
  I8: "CharStorage",
  U8: "ByteStorage",
  BOOL: "BoolStorage",
  C64: "ComplexFloatStorage",
};

/** The `torch.<name>` dtype global of each Dtype (what `pickle(torch.bfloat16)` writes). */
const TORCH_DTYPE: Record<Dtype, string> = {
  BOOL: "bool",
  U8: "uint8",
  I8: "int8",
  F8_E5M2: "float8_e5m2",
  F8_E4M3: "float8_e4m3fn",
  I16: "int16",
  U16: "uint16",
  F16: "float16",
  BF16: "bfloat16",
  I32: "int32",
  U32: "uint32",
  F32: "float32",
  F64: "float64",
  I64: "int64",
  U64: "uint64",
  C64: "complex64",
};

/**
 * Every dtype global torch may pickle (canonical names only: `torch.float` pickles as
 * `torch float32`). Those without a Dtype are accepted as values but not as tensor dtypes.
 */
const OTHER_TORCH_DTYPES = [
  "complex32",
  "complex128",
  "qint8",
  "quint8",
  "qint32",
  "quint4x2",
  "quint2x4",
  "float8_e4m3fnuz",
  "float8_e5m2fnuz",
  "float8_e8m0fnu",
  "float4_e2m1fn_x2",
  "bits1x8",
  "bits2x4",
  "bits4x2",
  "bits8",
  "bits16",
  ...["1", "2", "3", "4", "5", "6", "7"].flatMap((n) => [`uint${n}`, `int${n}`]),
];

/** Legacy storage classes with no Dtype here (accepted as globals, rejected as tensor storage). */
const OTHER_LEGACY_STORAGES = ["ComplexDoubleStorage", "QInt8Storage", "QInt32Storage", "QUInt8Storage", "QUInt4x2Storage", "QUInt2x4Storage"];

const DTYPE_BY_STORAGE = new Map(Object.entries(LEGACY_STORAGE).map(([dtype, name]) => [name, dtype as Dtype]));
const DTYPE_BY_TORCH_NAME = new Map(Object.entries(TORCH_DTYPE).map(([dtype, name]) => [name, dtype as Dtype]));
const ALL_TORCH_DTYPES = new Set([...DTYPE_BY_TORCH_NAME.keys(), ...OTHER_TORCH_DTYPES]);
const ALL_LEGACY_STORAGES = new Set([...DTYPE_BY_STORAGE.keys(), ...OTHER_LEGACY_STORAGES]);

/** `torch.<X>Storage` class name for a dtype, or undefined when it needs `_rebuild_tensor_v3`. */
export function legacyStorageClass(dtype: Dtype): string | undefined {
  return LEGACY_STORAGE[dtype];
}

export function torchDtypeName(dtype: Dtype): string {
  return TORCH_DTYPE[dtype];
}

export function dtypeOfStorageClass(name: string): Dtype | undefined {
  return DTYPE_BY_STORAGE.get(name);
}

export function dtypeOfTorchName(name: string): Dtype | undefined {
  return DTYPE_BY_TORCH_NAME.get(name);
}

export function isTorchDtypeName(name: string): boolean {
  return ALL_TORCH_DTYPES.has(name);
}

export function isLegacyStorageClass(name: string): boolean {
  return ALL_LEGACY_STORAGES.has(name);
}
