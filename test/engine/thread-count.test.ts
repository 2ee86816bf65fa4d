import { describe, expect, it } from "vitest";
import { threadCount, type ThreadChoice } from "../../src/engine/thread-count.js";

const MIN = 3e9;
const choice = (jobs: number, units: number, forced: boolean | undefined, cpus: number, bytes: number): ThreadChoice => ({ jobs, units, forced, cpus, bytes, minBytesOnTwoCpus: MIN });

describe("threadCount", () => {
  it("uses up to one thread per CPU by default; on two CPUs only for enough bytes to pay for their start", () => {
    expect(threadCount(choice(8, 16, undefined, 1, MIN))).toBe(1);
    expect(threadCount(choice(8, 16, undefined, 2, MIN))).toBe(2);
    expect(threadCount(choice(8, 16, undefined, 2, MIN - 1))).toBe(1);
    expect(threadCount(choice(2, 16, undefined, 16, 0))).toBe(2);
    expect(threadCount(choice(8, 16, undefined, 3, 0))).toBe(3);
    expect(threadCount(choice(32, 64, undefined, 16, 0))).toBe(16);
    expect(threadCount(choice(8, 16, undefined, 16, 0))).toBe(8);
    expect(threadCount(choice(8, 3, undefined, 16, 0))).toBe(3);
    expect(threadCount(choice(1, 16, undefined, 16, MIN))).toBe(1);
  });

  it("follows a forced choice: off is one thread, on is one per job (at most one per unit)", () => {
    expect(threadCount(choice(8, 16, false, 16, MIN))).toBe(1);
    expect(threadCount(choice(3, 16, true, 2, 0))).toBe(3);
    expect(threadCount(choice(2, 16, true, 2, 0))).toBe(2);
    expect(threadCount(choice(3, 1, true, 2, MIN))).toBe(1);
  });
});
