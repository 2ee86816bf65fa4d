import { dtypeBytes, numelOf, type Dtype } from "../../../model/tensor.js";
import { dtypeOfTorchName } from "../dtypes.js";
import type { Machine } from "./machine.js";
import { PyGlobal, PyTuple, TensorRef, type PyValue, type StorageRef } from "./values.js";
import { TensorLayoutError } from "../errors.js";

function isCount(value: PyValue | undefined): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

function dims(m: Machine, value: PyValue | undefined, what: string): number[] {
  const items = value instanceof PyTuple ? value.items : Array.isArray(value) ? value : undefined;
  if (items === undefined || !items.every(isCount)) {
    return m.fail(`tensor ${what} must be a tuple of non-negative ints`);
  }
  return [...items] as number[];
}

/** The dtype argument of _rebuild_tensor_v3: a torch dtype global with a Dtype here. */
function dtypeArgument(m: Machine, value: PyValue | undefined): Dtype {
  if (!(value instanceof PyGlobal) || value.module !== "torch") {
    return m.fail("_rebuild_tensor_v3 expects a torch dtype as its 7th argument");
  }
  const dtype = dtypeOfTorchName(value.name);
  if (dtype === undefined) {
    throw new TensorLayoutError(m.file, `tensor dtype torch.${value.name} is not supported`);
  }
  return dtype;
}

/** An untyped storage (bytes) seen as elements of `dtype`. */
function retype(m: Machine, storage: StorageRef, dtype: Dtype): StorageRef {
  const itemsize = dtypeBytes(dtype);
  if (storage.byteLength % itemsize !== 0) {
    throw new TensorLayoutError(m.file, `storage "${storage.key}" holds ${storage.byteLength} bytes, not a whole number of ${dtype} elements`);
  }
  return { ...storage, dtype, numel: storage.byteLength / itemsize };
}

/**
 * torch._utils._rebuild_tensor(_v2|_v3)(storage, storage_offset, size, stride, ...): a lazy
 * TensorRef whose view is checked to lie inside its storage. v3 carries the dtype as its 7th
 * argument and an untyped (byte) storage.
 */
export function rebuildTensor(m: Machine, args: readonly PyValue[], version: "v1" | "v2" | "v3"): TensorRef {
  const [storageArg, offset, sizeArg, strideArg] = args;
  if (storageArg === undefined || !m.isStorage(storageArg)) {
    return m.fail(`_rebuild_tensor_${version}: the first argument must be a storage (a persistent id)`);
  }
  if (!isCount(offset)) {
    return m.fail("tensor storage offset must be a non-negative int");
  }
  const shape = dims(m, sizeArg, "size");
  const stride = dims(m, strideArg, "stride");
  if (stride.length !== shape.length) {
    return m.fail(`tensor has ${shape.length} sizes but ${stride.length} strides`);
  }
  const storage = version === "v3" ? retype(m, storageArg.storage, dtypeArgument(m, args[6])) : storageArg.storage;
  if (numelOf(shape) > 0) {
    const last = shape.reduce((acc, size, i) => acc + (size - 1) * (stride[i] ?? 0), offset);
    if (!Number.isSafeInteger(last) || last >= storage.numel) {
      throw new TensorLayoutError(
        m.file,
        `tensor of shape [${shape.join(", ")}], stride [${stride.join(", ")}], offset ${offset} reaches element ${last} of storage "${storage.key}", which has ${storage.numel}`,
      );
    }
  }
  return new TensorRef(storage.dtype, shape, stride, offset, storage);
}

/** torch._utils._rebuild_parameter(_with_state)(data, requires_grad, hooks[, state]): the tensor itself. */
export function rebuildParameter(m: Machine, args: readonly PyValue[]): PyValue {
  const [data] = args;
  if (!(data instanceof TensorRef)) {
    return m.fail("_rebuild_parameter expects a tensor");
  }
  return data;
}
