import { Containment } from "./containment.js";
import { PickleInput } from "./input.js";
import type { PickleLimits } from "./limits.js";
import { TensorRef, type PyValue } from "./values.js";
import { PickleLimitError, PickleMalformedError } from "../errors.js";

/** Resolves a BINPERSID id (torch: a storage tuple) to a value; storages come back as 1-D TensorRefs. */
export type PersistentLoad = (pid: PyValue, position: number) => PyValue;

/**
 * The state of the restricted unpickler: stack, MARK stack, memo and the containment
 * bookkeeping. Opcode handlers (op-*.ts) act on it; every failure is a typed error that names
 * the file and the position of the opcode being run.
 */
export class Machine {
  readonly input: PickleInput;
  readonly containment: Containment;
  readonly memo = new Map<number, PyValue>();
  /** Start of the opcode being executed. */
  opStart = 0;
  private stack: PyValue[] = [];
  private readonly metastack: PyValue[][] = [];
  private items = 0;
  private readonly storages = new WeakSet<TensorRef>();

  constructor(
    bytes: Uint8Array,
    readonly file: string,
    readonly limits: PickleLimits,
    private readonly persistentLoad: PersistentLoad | undefined,
  ) {
    this.input = new PickleInput(bytes, file, limits.maxStringBytes);
    this.containment = new Containment(limits.maxDepth, limits.maxObjects);
  }

  fail(problem: string): never {
    throw new PickleMalformedError(this.file, this.opStart, problem);
  }

  exceed(limit: keyof PickleLimits): never {
    throw new PickleLimitError(this.file, limit, this.limits[limit], this.opStart);
  }

  push(value: PyValue): void {
    if (this.items >= this.limits.maxStack) {
      this.exceed("maxStack");
    }
    this.stack.push(value);
    this.items += 1;
  }

  /** Pushes a value that was just built: containers are registered for the containment checks. */
  pushNew(value: PyValue): void {
    this.check(this.containment.created(value));
    this.push(value);
  }

  pop(what: string): PyValue {
    if (this.stack.length === 0) {
      this.fail(`stack underflow reading ${what}`);
    }
    this.items -= 1;
    return this.stack.pop() ?? null;
  }

  top(what: string): PyValue {
    if (this.stack.length === 0) {
      this.fail(`stack underflow reading ${what}`);
    }
    return this.stack[this.stack.length - 1] ?? null;
  }

  get stackEmpty(): boolean {
    return this.stack.length === 0;
  }

  mark(): void {
    if (this.metastack.length >= this.limits.maxDepth) {
      this.exceed("maxDepth");
    }
    this.metastack.push(this.stack);
    this.stack = [];
  }

  /** The items above the last MARK, removing the mark. */
  popMark(): PyValue[] {
    const below = this.metastack.pop();
    if (below === undefined) {
      this.fail("no MARK on the stack");
    }
    const items = this.stack;
    this.items -= items.length;
    this.stack = below;
    return items;
  }

  /** Checks that `children` may be added to `target` (see Containment). */
  adding(target: PyValue, children: readonly PyValue[]): void {
    this.check(this.containment.adding(target, children));
  }

  memoPut(index: number): void {
    if (index >= this.limits.maxMemo || (!this.memo.has(index) && this.memo.size >= this.limits.maxMemo)) {
      this.exceed("maxMemo");
    }
    this.memo.set(index, this.top("the value to memoize"));
  }

  memoGet(index: number): void {
    const value = this.memo.get(index);
    if (value === undefined) {
      this.fail(`memo index ${index} was never stored`);
    }
    this.push(value);
  }

  persistent(pid: PyValue): PyValue {
    if (this.persistentLoad === undefined) {
      this.fail("a persistent id, but no persistent_load was given");
    }
    const value = this.persistentLoad(pid, this.opStart);
    if (value instanceof TensorRef) {
      this.storages.add(value);
    }
    return value;
  }

  /** Whether `value` came from persistent_load (a storage), not from a rebuild function. */
  isStorage(value: PyValue): value is TensorRef {
    return value instanceof TensorRef && this.storages.has(value);
  }

  private check(problem: ReturnType<Containment["created"]>): void {
    if (problem?.kind === "limit") {
      this.exceed(problem.limit);
    }
    if (problem?.kind === "frozen") {
      this.fail("the pickle modifies a container after placing it inside another (a cycle or a shared edit), which checkpoints never do");
    }
  }
}
