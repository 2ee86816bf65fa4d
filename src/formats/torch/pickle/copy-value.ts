import { PyDict, PyNamespace, PyObject, PyOrderedDict, PyTuple, TensorRef, type PyValue, type StorageRef } from "./values.js";

/**
 * A copy of a value tree whose tensors lie in other storages: every container and tensor (with
 * its shape and stride) is new, shared ones stay shared as the pickle's memo made them, and each
 * tensor's storage is replaced by `storageFor(its storage)`; the leaves (str, numbers, PyFloat,
 * PyGlobal, PyBytes) are immutable and shared with the original.
 */
export function copyWithStorages(value: PyValue, storageFor: (storage: StorageRef) => StorageRef): PyValue {
  const copies = new Map<object, PyValue>();
  const copy = (v: PyValue): PyValue => {
    if (v === null || typeof v !== "object") {
      return v;
    }
    const done = copies.get(v);
    if (done !== undefined) {
      return done;
    }
    const made = copyContainer(v, copy, storageFor);
    copies.set(v, made);
    return made;
  };
  return copy(value);
}

function copyContainer(v: PyValue & object, copy: (v: PyValue) => PyValue, storageFor: (storage: StorageRef) => StorageRef): PyValue {
  if (Array.isArray(v)) {
    return v.map(copy);
  }
  if (v instanceof TensorRef) {
    return new TensorRef(v.dtype, [...v.shape], [...v.stride], v.storageOffset, storageFor(v.storage));
  }
  if (v instanceof PyTuple) {
    return new PyTuple(v.items.map(copy));
  }
  if (v instanceof PyDict) {
    const entries = v.entries.map(([key, item]): [PyValue, PyValue] => [copy(key), copy(item)]);
    return v instanceof PyOrderedDict ? new PyOrderedDict(entries) : new PyDict(entries);
  }
  if (v instanceof PyNamespace) {
    return new PyNamespace(copy(v.attrs) as PyDict);
  }
  if (v instanceof PyObject) {
    return new PyObject(v.module, v.name, copy(v.args), copy(v.state));
  }
  return v;
}
