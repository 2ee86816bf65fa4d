import { Emitter } from "./emitter.js";
import { BATCH_SIZE, OP, WRITE_PROTOCOL } from "./opcodes.js";
import { writeTensor } from "./pickle-tensor.js";
import { PyBytes, PyDict, PyFloat, PyGlobal, PyNamespace, PyObject, PyOrderedDict, PyTuple, TensorOut, TensorRef, type PyValue, type StorageOut } from "./values.js";
import { UnpicklableValueError } from "../errors.js";

const MAX_NESTING = 1000;

export interface PickledStorage {
  readonly key: string;
  readonly storage: StorageOut;
}

export interface Pickled {
  readonly bytes: Uint8Array;
  /** Storages in first-appearance order; keys "0", "1", ... */
  readonly storages: readonly PickledStorage[];
}

/** Pickles a value graph the way torch.save does (protocol 2, CPython's memo numbering). */
export function pickle(root: PyValue, file: string): Pickled {
  const pickler = new Pickler(file);
  pickler.dump(root);
  return { bytes: pickler.out.toBytes(), storages: pickler.storageList };
}

/**
 * Protocol-2 pickler, byte-identical to CPython's C pickler under torch.save for the values it
 * supports (torch-format.md 2.1-2.3 and its reference writer 4.1). Objects are memoized by
 * identity; globals by name; the strings 'storage', 'cpu' and each storage key by value.
 */
export class Pickler extends Emitter {
  private readonly storageKeys = new Map<StorageOut, string>();
  readonly storageList: PickledStorage[] = [];
  private depth = 0;

  constructor(readonly file: string) {
    super();
  }

  dump(root: PyValue): void {
    this.out.byte(OP.PROTO);
    this.out.byte(WRITE_PROTOCOL);
    this.save(root);
    this.out.byte(OP.STOP);
  }

  tuple(items: readonly PyValue[], identity?: object): void {
    if (items.length === 0) {
      this.out.byte(OP.EMPTY_TUPLE);
      return;
    }
    if (items.length > 3) {
      this.out.byte(OP.MARK);
    }
    for (const item of items) {
      this.save(item);
    }
    const sized = [OP.TUPLE1, OP.TUPLE2, OP.TUPLE3][items.length - 1];
    this.out.byte(sized ?? OP.TUPLE);
    this.put(identity);
  }

  /** The key of a storage: "0", "1", ... in first-appearance order. */
  storageKey(storage: StorageOut): string {
    let key = this.storageKeys.get(storage);
    if (key === undefined) {
      key = String(this.storageKeys.size);
      this.storageKeys.set(storage, key);
      this.storageList.push({ key, storage });
    }
    return key;
  }

  save(value: PyValue): void {
    if (value === null) {
      this.out.byte(OP.NONE);
    } else if (typeof value === "boolean") {
      this.out.byte(value ? OP.NEWTRUE : OP.NEWFALSE);
    } else if (typeof value === "number") {
      if (!Number.isSafeInteger(value)) {
        throw new UnpicklableValueError(this.file, `the number ${value} as a Python int; use PyFloat for floats`);
      }
      this.integer(value);
    } else if (typeof value === "bigint") {
      this.integer(value);
    } else if (typeof value === "string") {
      this.string(value);
    } else if (value instanceof PyFloat) {
      this.out.byte(OP.BINFLOAT);
      this.out.f64be(value.value);
    } else if (value instanceof PyGlobal) {
      this.global(value.module, value.name);
    } else if (!this.get(value)) {
      this.nested(() => this.saveObject(value));
    }
  }

  private nested(write: () => void): void {
    this.depth += 1;
    if (this.depth > MAX_NESTING) {
      throw new UnpicklableValueError(this.file, `a value nested deeper than ${MAX_NESTING} levels (or a cycle through a tuple)`);
    }
    write();
    this.depth -= 1;
  }

  private saveObject(value: Exclude<PyValue, null | boolean | number | bigint | string | PyFloat | PyGlobal>): void {
    if (Array.isArray(value)) {
      this.out.byte(OP.EMPTY_LIST);
      this.put(value);
      this.batched(value, (item) => this.save(item), OP.APPENDS, OP.APPEND);
    } else if (value instanceof PyTuple) {
      this.tuple(value.items, value);
    } else if (value instanceof PyDict) {
      this.dict(value);
    } else if (value instanceof PyNamespace) {
      this.global("argparse", "Namespace");
      this.out.byte(OP.EMPTY_TUPLE);
      this.out.byte(OP.NEWOBJ);
      this.put(value);
      this.save(value.attrs);
      this.out.byte(OP.BUILD);
    } else if (value instanceof PyObject) {
      this.object(value);
    } else if (value instanceof PyBytes) {
      this.bytes(value);
    } else if (value instanceof TensorOut) {
      writeTensor(this, value);
      this.put(value);
    } else if (value instanceof TensorRef) {
      throw new UnpicklableValueError(this.file, `a TensorRef (storage "${value.storage.key}" of ${value.storage.file}); wrap its bytes in a TensorOut`);
    } else {
      throw new UnpicklableValueError(this.file, `a value of type ${typeof value}`);
    }
  }

  private dict(value: PyDict): void {
    if (value instanceof PyOrderedDict) {
      this.global("collections", "OrderedDict");
      this.out.byte(OP.EMPTY_TUPLE);
      this.out.byte(OP.REDUCE);
    } else {
      this.out.byte(OP.EMPTY_DICT);
    }
    this.put(value);
    this.batched(
      value.entries,
      ([k, v]) => {
        this.save(k);
        this.save(v);
      },
      OP.SETITEMS,
      OP.SETITEM,
    );
  }

  /** An opaque object: GLOBAL, args tuple, REDUCE, then state and BUILD when it has one. */
  private object(value: PyObject): void {
    if (!(value.args instanceof PyTuple)) {
      throw new UnpicklableValueError(this.file, `the object ${value.module}.${value.name}: its args must be a PyTuple`);
    }
    this.global(value.module, value.name);
    this.tuple(value.args.items, value.args);
    this.out.byte(OP.REDUCE);
    this.put(value);
    if (value.state !== null) {
      this.save(value.state);
      this.out.byte(OP.BUILD);
    }
  }

  /** bytes in protocol 2: `_codecs.encode(latin1 text, 'latin1')`, or `bytes()` when empty (as CPython). */
  private bytes(value: PyBytes): void {
    if (value.bytes.byteLength === 0) {
      this.global("__builtin__", "bytes");
      this.out.byte(OP.EMPTY_TUPLE);
    } else {
      this.global("_codecs", "encode");
      this.string(Buffer.from(value.bytes).toString("latin1"));
      this.string("latin1");
      this.out.byte(OP.TUPLE2);
      this.put();
    }
    this.out.byte(OP.REDUCE);
    this.put(value);
  }

  private batched<T>(items: readonly T[], write: (item: T) => void, many: number, one: number): void {
    for (let start = 0; start < items.length; start += BATCH_SIZE) {
      const batch = items.slice(start, start + BATCH_SIZE);
      if (batch.length > 1) {
        this.out.byte(OP.MARK);
      }
      batch.forEach(write);
      this.out.byte(batch.length > 1 ? many : one);
    }
  }
}
