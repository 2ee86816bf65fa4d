import { InvalidArgumentError } from "commander";
import { describe, expect, it } from "vitest";
import { workerShare } from "../../src/cli/parse-options.js";
import { dealByBytes } from "../../src/engine/worker-split.js";

describe("dealByBytes", () => {
  it("gives every item to exactly one worker, largest first to the least loaded, the same every time", () => {
    const sizes = [5, 1, 9, 3, 3, 7, 2, 8];
    const deal = dealByBytes(sizes, 3);
    expect(deal.flat().sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    const loads = deal.map((items) => items.reduce((s, i) => s + (sizes[i] ?? 0), 0));
    expect(Math.max(...loads) - Math.min(...loads)).toBeLessThanOrEqual(1);
    expect(dealByBytes(sizes, 3)).toEqual(deal);
    expect(dealByBytes(sizes, 1)).toEqual([[0, 1, 2, 3, 4, 5, 6, 7]]);
    expect(dealByBytes([4, 4], 5).filter((d) => d.length === 0)).toHaveLength(3);
  });
});

describe("--worker", () => {
  const parse = (value: string, env: Record<string, string> = {}) => workerShare(env)(value);
  it("takes I/N, or reads a Slurm array or a Kubernetes indexed Job", () => {
    expect(parse("2/4")).toEqual({ index: 2, count: 4 });
    expect(parse("auto", { SLURM_ARRAY_TASK_ID: "7", SLURM_ARRAY_TASK_MIN: "5", SLURM_ARRAY_TASK_COUNT: "3" })).toEqual({ index: 2, count: 3 });
    expect(parse("auto", { SLURM_ARRAY_TASK_ID: "1", SLURM_ARRAY_TASK_COUNT: "2" })).toEqual({ index: 1, count: 2 });
    expect(parse("auto/6", { JOB_COMPLETION_INDEX: "5" })).toEqual({ index: 5, count: 6 });
    expect(parse("auto", { JOB_COMPLETION_INDEX: "0", MEGATRON_CONVERT_WORKERS: "2" })).toEqual({ index: 0, count: 2 });
  });
  it("refuses what is not a worker of N, saying where the numbers came from", () => {
    expect(() => parse("4/4")).toThrow(InvalidArgumentError);
    expect(() => parse("1of2")).toThrow(/must be I\/N/);
    expect(() => parse("auto")).toThrow(/no SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX/);
    expect(() => parse("auto", { JOB_COMPLETION_INDEX: "1" })).toThrow(/needs the worker count/);
    expect(() => parse("auto", { SLURM_ARRAY_TASK_ID: "3", SLURM_ARRAY_TASK_COUNT: "3" })).toThrow(/from SLURM_ARRAY_TASK_ID/);
  });
});
