import { describe, expect, it } from "vitest";
import { isSlowRead, ReadModePolicy, type ReadMode } from "../../../src/formats/io/read-mode.js";

const MiB = 1 << 20;

function modes(policy: ReadModePolicy, n: number): ReadMode[] {
  return Array.from({ length: n }, () => policy.next());
}

describe("read mode", () => {
  it("counts a read as slow only when it is slower than memory speed", () => {
    expect(isSlowRead(MiB, 0.07)).toBe(false); // 15 GB/s: the page cache
    expect(isSlowRead(MiB, 3.7)).toBe(true); // 280 MB/s: the device
    expect(isSlowRead(64 << 10, 0.05)).toBe(false);
    expect(isSlowRead(64 << 10, 0.3)).toBe(true);
  });

  it("keeps blocking reads through isolated stalls", () => {
    const policy = new ReadModePolicy();
    for (let i = 0; i < 300; i++) {
      expect(policy.next()).toBe("blocking");
      policy.blockingRead(MiB, i % 6 === 0 ? 4 : 0.07);
    }
  });

  it("moves to the thread pool when reads alternate between slow and fast", () => {
    const policy = new ReadModePolicy();
    const seen: ReadMode[] = [];
    for (let i = 0; i < 20; i++) {
      const mode = policy.next();
      seen.push(mode);
      if (mode === "blocking") {
        policy.blockingRead(MiB, i % 2 === 0 ? 4 : 0.07);
      }
    }
    expect(seen.slice(0, 7)).toEqual(Array(7).fill("blocking"));
    expect(seen.slice(7)).toEqual(Array(13).fill("pool"));
  });

  it("moves to the thread pool after slow reads, then tries blocking again", () => {
    const policy = new ReadModePolicy();
    for (let i = 0; i < 4; i++) {
      expect(policy.next()).toBe("blocking");
      policy.blockingRead(MiB, 4);
    }
    const pool = modes(policy, 64);
    expect(new Set(pool)).toEqual(new Set(["pool"]));
    expect(policy.next()).toBe("blocking");
    policy.blockingRead(MiB, 0.05);
    expect(policy.next()).toBe("blocking");
  });

  it("never blocks when blocking reads are not allowed", () => {
    expect(new Set(modes(new ReadModePolicy(false), 10))).toEqual(new Set(["pool"]));
  });
});
