import { dtypeBytes, numelOf, type Dtype } from "../../../model/tensor.js";

/**
 * The Python object model of a checkpoint pickle, used for reading and for writing.
 * A plain JS number is a Python int (a bigint when it is not a safe integer); floats are PyFloat.
 */

/** A Python float (JS numbers alone mean int). */
export class PyFloat {
  constructor(readonly value: number) {}
}

export class PyTuple {
  constructor(readonly items: readonly PyValue[]) {}
}

type PrimitiveKey = string | number | bigint | boolean | null;

function isPrimitiveKey(key: PyValue): key is PrimitiveKey {
  return key === null || typeof key !== "object";
}

/** A Python dict, insertion ordered. Primitive keys are indexed; other keys compare by identity. */
export class PyDict {
  #index = new Map<PrimitiveKey, number>();
  #indexed = 0;

  constructor(readonly entries: Array<[PyValue, PyValue]> = []) {}

  get(key: string): PyValue | undefined {
    const at = this.find(key);
    return at === undefined ? undefined : this.entries[at]?.[1];
  }

  has(key: PyValue): boolean {
    return this.find(key) !== undefined;
  }

  /** Replaces the value of an existing key in place (Python semantics) or appends. */
  set(key: PyValue, value: PyValue): this {
    const at = this.find(key);
    if (at === undefined) {
      this.entries.push([key, value]);
    } else {
      this.entries[at] = [key, value];
    }
    return this;
  }

  keys(): PyValue[] {
    return this.entries.map(([key]) => key);
  }

  get size(): number {
    return this.entries.length;
  }

  private find(key: PyValue): number | undefined {
    if (!isPrimitiveKey(key)) {
      const at = this.entries.findIndex(([k]) => k === key);
      return at < 0 ? undefined : at;
    }
    if (this.#indexed > this.entries.length) {
      this.reindex();
    }
    this.extendIndex();
    const at = this.#index.get(key);
    if (at !== undefined && this.entries[at]?.[0] !== key) {
      this.reindex();
      return this.#index.get(key);
    }
    return at;
  }

  private reindex(): void {
    this.#index = new Map();
    this.#indexed = 0;
    this.extendIndex();
  }

  private extendIndex(): void {
    for (; this.#indexed < this.entries.length; this.#indexed += 1) {
      const key = this.entries[this.#indexed]?.[0] ?? null;
      if (isPrimitiveKey(key) && !this.#index.has(key)) {
        this.#index.set(key, this.#indexed);
      }
    }
  }
}

/** collections.OrderedDict */
export class PyOrderedDict extends PyDict {}

/** argparse.Namespace, its attributes as a dict. */
export class PyNamespace {
  constructor(readonly attrs: PyDict) {}
}

/** A global used as a value, e.g. torch.bfloat16. */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}

  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
}

/**
 * The opaque result of an allowed but uninterpreted REDUCE/NEWOBJ (+BUILD): _io.BytesIO,
 * Megatron enums, numpy arrays. Never executed. `args` is the argument tuple, `state` what BUILD
 * gave it (null when none).
 */
export class PyObject {
  #state: PyValue;

  constructor(
    readonly module: string,
    readonly name: string,
    readonly args: PyValue,
    state: PyValue,
  ) {
    this.#state = state;
  }

  get state(): PyValue {
    return this.#state;
  }

  /** BUILD: used by the unpickler only. */
  build(state: PyValue): void {
    this.#state = state;
  }
}

/** Python bytes (from _codecs.encode in protocol 2, or the protocol-3+ bytes opcodes). */
export class PyBytes {
  constructor(readonly bytes: Uint8Array) {}
}

export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | PyFloat
  | PyValue[]
  | PyTuple
  | PyDict
  | PyNamespace
  | PyGlobal
  | PyObject
  | PyBytes
  | TensorRef
  | TensorOut;

/** A storage read from a file: record data/<key>, not loaded. */
export interface StorageRef {
  readonly key: string;
  readonly dtype: Dtype;
  /** In elements of `dtype`. */
  readonly numel: number;
  readonly file: string;
  /** Absolute offset of the record's first byte in `file`. */
  readonly dataOffset: number;
  readonly byteLength: number;
}

export function contiguousStrides(shape: readonly number[]): number[] {
  const stride = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i -= 1) {
    stride[i] = acc;
    acc *= shape[i] ?? 1;
  }
  return stride;
}

/** A tensor read from a file: lazy, its bytes are not loaded. Offsets and strides in elements. */
export class TensorRef {
  constructor(
    readonly dtype: Dtype,
    readonly shape: readonly number[],
    readonly stride: readonly number[],
    readonly storageOffset: number,
    readonly storage: StorageRef,
  ) {}

  get numel(): number {
    return numelOf(this.shape);
  }

  /** Row-major dense (strides of size-1 dimensions do not matter, as in torch). */
  get isContiguous(): boolean {
    if (this.numel === 0) {
      return true;
    }
    let expected = 1;
    for (let i = this.shape.length - 1; i >= 0; i -= 1) {
      const size = this.shape[i] ?? 1;
      if (size !== 1 && this.stride[i] !== expected) {
        return false;
      }
      expected *= size;
    }
    return true;
  }

  /** Absolute file offset of the first element and byte length; only for contiguous tensors. */
  contiguousRange(): { offset: number; length: number } {
    if (!this.isContiguous) {
      throw new RangeError(`tensor of storage "${this.storage.key}" is not contiguous`);
    }
    const itemsize = dtypeBytes(this.dtype);
    return { offset: this.storage.dataOffset + this.storageOffset * itemsize, length: this.numel * itemsize };
  }
}

/** A storage to write; identity is object identity. Its bytes are streamed when the archive is written. */
export interface StorageOut {
  readonly dtype: Dtype;
  /** In elements of `dtype`. */
  readonly numel: number;
  /** Yields exactly numel * itemsize bytes, little-endian; chunks must not be reused after being yielded. */
  readonly data: () => AsyncIterable<Uint8Array>;
}

/** A tensor to write: a view of a StorageOut (default: contiguous from offset 0). */
export class TensorOut {
  constructor(
    readonly storage: StorageOut,
    readonly shape: readonly number[],
    readonly stride?: readonly number[],
    readonly storageOffset?: number,
  ) {}

  get dtype(): Dtype {
    return this.storage.dtype;
  }
}
