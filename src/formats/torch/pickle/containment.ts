import { PyDict, PyNamespace, PyObject, PyTuple, type PyValue } from "./values.js";

interface Metrics {
  size: number;
  depth: number;
  frozen: boolean;
}

const LEAF: Readonly<Metrics> = { size: 1, depth: 0, frozen: true };

/** Why a container operation was refused; the unpickler turns it into a typed error. */
export type ContainmentProblem = { kind: "limit"; limit: "maxDepth" | "maxObjects"; max: number } | { kind: "frozen" };

export function childrenOf(value: PyValue): PyValue[] {
  if (Array.isArray(value)) {
    return value;
  }
  if (value instanceof PyTuple) {
    return [...value.items];
  }
  if (value instanceof PyDict) {
    return value.entries.flat();
  }
  if (value instanceof PyNamespace) {
    return value.attrs.entries.flat();
  }
  if (value instanceof PyObject) {
    return [value.args, value.state];
  }
  return [];
}

function isContainer(value: PyValue): value is PyValue[] | PyTuple | PyDict | PyNamespace | PyObject {
  return Array.isArray(value) || value instanceof PyTuple || value instanceof PyDict || value instanceof PyNamespace || value instanceof PyObject;
}

/**
 * Keeps the value tree finite and bounded while it is built: every container records the
 * size of its expanded tree and its depth; a value placed inside a container is frozen, and
 * mutating a frozen container (which only cycles or post-hoc edits need, never torch.save)
 * is refused. So the result has no cycles, depth <= maxDepth and expanded size <= maxObjects,
 * and consumers may walk it recursively.
 */
export class Containment {
  private readonly metrics = new WeakMap<object, Metrics>();

  constructor(
    private readonly maxDepth: number,
    private readonly maxObjects: number,
  ) {}

  /** A container just built from its current children (TUPLE, LIST, DICT, a REDUCE result ...). */
  created(value: PyValue): ContainmentProblem | undefined {
    if (!isContainer(value) || this.metrics.has(value)) {
      return undefined;
    }
    const own: Metrics = { size: 1, depth: 0, frozen: value instanceof PyTuple };
    this.metrics.set(value, own);
    return this.absorb(own, childrenOf(value));
  }

  /** Children about to be added to `target` (APPEND, SETITEM, BUILD ...). */
  adding(target: PyValue, children: readonly PyValue[]): ContainmentProblem | undefined {
    if (!isContainer(target)) {
      return undefined;
    }
    let own = this.metrics.get(target);
    if (own === undefined) {
      own = { size: 1, depth: 0, frozen: false };
      this.metrics.set(target, own);
    }
    if (own.frozen || children.includes(target)) {
      return { kind: "frozen" };
    }
    return this.absorb(own, children);
  }

  private absorb(own: Metrics, children: readonly PyValue[]): ContainmentProblem | undefined {
    for (const child of children) {
      const m = this.of(child);
      if (m !== LEAF) {
        m.frozen = true;
      }
      own.size += m.size;
      own.depth = Math.max(own.depth, m.depth + 1);
    }
    if (own.depth > this.maxDepth) {
      return { kind: "limit", limit: "maxDepth", max: this.maxDepth };
    }
    if (own.size > this.maxObjects) {
      return { kind: "limit", limit: "maxObjects", max: this.maxObjects };
    }
    return undefined;
  }

  private of(value: PyValue): Metrics {
    if (!isContainer(value)) {
      return LEAF;
    }
    let m = this.metrics.get(value);
    if (m === undefined) {
      m = { size: 1, depth: 0, frozen: false };
      this.metrics.set(value, m);
      this.absorb(m, childrenOf(value));
    }
    return m;
  }
}
