/**
 * Bounds the restricted unpickler enforces, so that a hostile data.pkl gives a typed error
 * instead of a hang, a stack overflow or a huge allocation.
 */
export interface PickleLimits {
  /** Largest data.pkl read at all. */
  readonly maxPickleBytes: number;
  /** Deepest nesting of values, and of MARKs. Python's own recursion limit is about 1000. */
  readonly maxDepth: number;
  /** Most items on the stack (all MARK levels together). */
  readonly maxStack: number;
  /** Most memo entries; memo indexes must also be below this. */
  readonly maxMemo: number;
  /** Most nodes in the value tree, a shared value counted each time it is reachable. */
  readonly maxObjects: number;
  /** Longest single string or bytes value (it must also fit in the rest of the input). */
  readonly maxStringBytes: number;
}

export const DEFAULT_PICKLE_LIMITS: PickleLimits = {
  maxPickleBytes: 1 << 30,
  maxDepth: 1000,
  maxStack: 10_000_000,
  maxMemo: 10_000_000,
  maxObjects: 50_000_000,
  maxStringBytes: 256 << 20,
};

export function pickleLimits(overrides: Partial<PickleLimits> = {}): PickleLimits {
  return { ...DEFAULT_PICKLE_LIMITS, ...overrides };
}
