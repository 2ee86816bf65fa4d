import { dtypeBytes, isDtype, numelOf } from "../../../model/tensor.js";
import { legacyStorageClass, torchDtypeName } from "../dtypes.js";
import { OP } from "./opcodes.js";
import type { Pickler } from "./pickler.js";
import { contiguousStrides, type TensorOut } from "./values.js";
import { TensorLayoutError } from "../errors.js";

/**
 * A tensor as torch.save pickles it (torch-format.md 2.2):
 * `_rebuild_tensor_v2((('storage', <X>Storage, key, 'cpu', numel) BINPERSID, offset, size, stride,
 * False, OrderedDict()))`, or `_rebuild_tensor_v3` with UntypedStorage (numel in bytes) and the
 * dtype as 7th argument for dtypes without a legacy storage class. The caller memoizes the result.
 */
export function writeTensor(p: Pickler, tensor: TensorOut): void {
  const stride = checkLayout(p.file, tensor);
  const { storage } = tensor;
  const storageClass = legacyStorageClass(storage.dtype);
  const v3 = storageClass === undefined;
  p.global("torch._utils", v3 ? "_rebuild_tensor_v3" : "_rebuild_tensor_v2");
  p.out.byte(OP.MARK);
  p.out.byte(OP.MARK);
  p.string("storage", true);
  if (v3) {
    p.global("torch.storage", "UntypedStorage");
  } else {
    p.global("torch", storageClass);
  }
  p.string(p.storageKey(storage), true);
  p.string("cpu", true);
  p.integer(v3 ? storage.numel * dtypeBytes(storage.dtype) : storage.numel);
  p.out.byte(OP.TUPLE);
  p.put();
  p.out.byte(OP.BINPERSID);
  p.integer(tensor.storageOffset ?? 0);
  p.tuple(tensor.shape);
  p.tuple(stride);
  p.out.byte(OP.NEWFALSE);
  p.global("collections", "OrderedDict");
  p.out.byte(OP.EMPTY_TUPLE);
  p.out.byte(OP.REDUCE);
  p.put();
  if (v3) {
    p.global("torch", torchDtypeName(storage.dtype));
  }
  p.out.byte(OP.TUPLE);
  p.put();
  p.out.byte(OP.REDUCE);
}

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

/** Checks dtype, shape, stride and offset against the storage; returns the stride to write. */
function checkLayout(file: string, tensor: TensorOut): readonly number[] {
  const { storage, shape } = tensor;
  const stride = tensor.stride ?? contiguousStrides(shape);
  const offset = tensor.storageOffset ?? 0;
  const what = `tensor ${JSON.stringify({ shape, stride, offset })} of a ${String(storage.dtype)} storage of ${storage.numel} elements`;
  if (!isDtype(storage.dtype) || !isCount(storage.numel)) {
    throw new TensorLayoutError(file, `${what}: unknown dtype or bad storage numel`);
  }
  if (!shape.every(isCount) || !stride.every(isCount) || stride.length !== shape.length || !isCount(offset)) {
    throw new TensorLayoutError(file, `${what}: shape, stride and offset must be non-negative integers, one stride per dimension`);
  }
  if (numelOf(shape) > 0) {
    const last = shape.reduce((acc, size, i) => acc + (size - 1) * (stride[i] ?? 0), offset);
    if (last >= storage.numel) {
      throw new TensorLayoutError(file, `${what}: the view reaches element ${last}, past the end of its storage`);
    }
  }
  return stride;
}
