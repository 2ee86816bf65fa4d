import { spawnSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { medianRuns, type BenchResults, type Run } from "../../src/bench/results.js";
import { chooseDims, largestTensorBytes, modelBytes, tensorSpecs } from "../../src/bench/synthetic.js";
import { pythonWithTorch } from "../support/python.js";
import { REPO } from "../support/tiny-model.js";
import { makeTempDir } from "../support/tmpdir.js";

const MiB = 2 ** 20;

function defined<T>(value: T | null | undefined, what: string): T {
  if (value === undefined || value === null) {
    throw new Error(`${what} is missing`);
  }
  return value;
}
const GiB = 2 ** 30;

describe("synthetic Mixtral sizes", () => {
  it("reaches each requested size with shared hidden size and vocab, even layer counts, real proportions", () => {
    const dims = chooseDims([GiB, 4 * GiB]);
    const small = defined(dims[0], "1 GiB dims");
    const large = defined(dims[1], "4 GiB dims");
    expect(small.hidden).toBe(1024);
    expect(large.hidden).toBe(small.hidden);
    expect(large.vocab).toBe(32_000);
    for (const [i, d] of dims.entries()) {
      expect(modelBytes(d)).toBeGreaterThanOrEqual([GiB, 4 * GiB][i] ?? 0);
      expect(d.layers % 2).toBe(0);
      expect(d.ffn).toBe(3.5 * d.hidden);
      expect([d.heads, d.kvGroups, d.experts]).toEqual([32, 8, 8]);
      const specBytes = tensorSpecs(d).reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 2), 0);
      expect(specBytes).toBe(modelBytes(d));
    }
    // The TP=1 rank file of the 4 GiB model is over 4 GiB: torch needs zip64 to load it.
    expect(modelBytes(large)).toBeGreaterThan(2 ** 32);
    expect(largestTensorBytes(small)).toBe(largestTensorBytes(large));
  });

  it("makes a model of the same size out of many more, smaller tensors with more experts", () => {
    const mixtral = defined(chooseDims([GiB])[0], "Mixtral dims");
    const fine = defined(chooseDims([GiB], 64)[0], "64-expert dims");
    expect(fine.experts).toBe(64);
    expect(fine.hidden).toBeLessThan(mixtral.hidden);
    expect(modelBytes(fine)).toBeGreaterThanOrEqual(GiB);
    expect(modelBytes(fine)).toBeLessThan(1.25 * GiB);
    expect(tensorSpecs(fine).length).toBeGreaterThan(4 * tensorSpecs(mixtral).length);
    expect(tensorSpecs(fine).filter((t) => t.name.endsWith(".63.w2.weight"))).toHaveLength(fine.layers);
  });

  it("refuses an expert count that EP=4 does not split", () => {
    const result = spawnSync(process.execPath, [join(REPO, "dist", "bench", "main.js"), "--experts", "6"], { encoding: "utf8" });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain("--experts must be a multiple of 4");
  });

  it("scales the vocabulary down for tiny models and keeps it a multiple of 1000", () => {
    const d = defined(chooseDims([4 * MiB])[0], "4 MiB dims");
    expect(d.hidden).toBe(64);
    expect(d.vocab).toBe(2000);
    expect(modelBytes(d)).toBeLessThan(8 * MiB);
  });
});

function expectRun(run: Run, name?: string): void {
  if (name !== undefined) {
    expect(run.name).toBe(name);
  }
  for (const value of [run.seconds, run.bytes, run.gbPerSecond, run.peakRssBytes]) {
    expect(Number.isFinite(value) && value > 0, `${run.name}: ${value}`).toBe(true);
  }
  expect(run.userSeconds + run.systemSeconds).toBeGreaterThan(0);
  expect(run.argv.length).toBeGreaterThan(1);
}

function expectAllNumbersFinite(value: unknown, path: string): void {
  if (typeof value === "number") {
    expect(Number.isFinite(value) && value >= 0, `${path} = ${value}`).toBe(true);
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => expectAllNumbersFinite(v, `${path}[${i}]`));
  } else if (typeof value === "object" && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      expectAllNumbersFinite(v, `${path}.${k}`);
    }
  }
}

describe("npm run bench (tiny, not timed)", () => {
  it("runs every measurement at two sizes and writes a JSON file with every field", async () => {
    const dir = await makeTempDir("mc-bench-");
    const out = join(dir, "bench.json");
    const args = ["--size", "8MiB", "--sizes", "4MiB,8MiB", "--dir", join(dir, "work"), "--out", out, "--python", pythonWithTorch(), "--torch-load-check", "--verify-torch-output"];
    const result = spawnSync(process.execPath, [join(REPO, "dist", "bench", "main.js"), ...args], { encoding: "utf8", maxBuffer: 16 << 20 });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toContain("hf2mcore tp4 ep4");
    expect(result.stdout).toContain(`results: ${out}`);
    expect(result.stdout).toMatch(/^ {2}checked in \d+ thread\(s\)$/m);
    expect(result.stdout.match(/^ {2}checked in /gm), "once per size, under verify tp4ep4 only").toHaveLength(2);

    const json = JSON.parse(await readFile(out, "utf8")) as BenchResults;
    expectAllNumbersFinite(json, "bench");
    expect(json.schemaVersion).toBe(1);
    expect(json.options.cache).toBe("warm");
    expect(json.options.experts).toBe(8);
    expect(json.method.cache).toMatch(/^warm: /);
    expect(json.machine.cpus).toBeGreaterThan(0);
    expect(Object.keys(json.method).sort()).toEqual(["cache", "peakRss", "ratio", "wallTime"]);
    expect(json.python?.torch).toBeTruthy();
    expect(json.sizes.map((s) => s.requestedBytes)).toEqual([4 * MiB, 8 * MiB]);
    for (const s of json.sizes) {
      expect(s.model.bytes).toBeGreaterThanOrEqual(s.requestedBytes);
      expect(s.model.shards).toBeGreaterThan(1);
      expect(s.model.tensors).toBe(tensorSpecs(s.model).length);
      expect(s.rssLimitBytes).toBe(256 * MiB + 2 * s.model.largestTensorBytes);
      expect(s.generateSeconds).toBeGreaterThan(0);
      expect(s.baselines.copy.samples).toHaveLength(5);
      // read before and after each verify: the TP4 EP4 checkpoint's, and the round trip's
      expect(s.baselines.read.samples).toHaveLength(4);
      for (const b of [s.baselines.copy, s.baselines.read]) {
        b.samples.forEach((r) => expectRun(r));
        expect(b.seconds * b.bytes * b.gbPerSecond).toBeGreaterThan(0);
      }
      const names = ["hf2mcore tp4 ep4", "hf2mcore tp1", "reshard tp4ep4 -> tp2 pp2 ep2", "mcore2hf tp4ep4", "verify tp4ep4", "verify hf vs hf-back"];
      expect(s.runs.map((r) => r.name)).toEqual(names);
      const roundTrip = defined(s.runs[5], "verify hf vs hf-back").argv;
      expect([roundTrip.slice(0, 2), roundTrip[3]?.endsWith("hf-back")]).toEqual([["megatron-convert", "verify"], true]);
      for (const run of s.runs) {
        expectRun(run);
        expect(run.baseline).toBe(run.name.startsWith("verify") ? "read" : "copy");
        expect(run.ratio).toBeGreaterThan(0);
        expect(run.baselineGbPerSecond).toBeGreaterThan(0);
        expect(run.ratioTarget).toBeGreaterThan(1);
      }
      const torch = defined(s.torch, "torch baseline");
      expectRun(torch.run, "torch baseline tp4 ep4");
      const shown = defined(s.runs[0], "hf2mcore tp4 ep4");
      expect(torch.speedup).toBeCloseTo(torch.run.seconds / shown.seconds, 9);
      expect(torch.memoryRatio).toBeCloseTo(torch.run.peakRssBytes / shown.peakRssBytes, 9);
      expect(torch.outputVerified).toBe(true);
      const load = defined(s.torchLoadCheck, "torch load check");
      expect(load.matchesPlan).toBe(true);
      expect(load.zip64).toBe(false);
      expect(load.tensors).toBeGreaterThan(0);
      expect(load.peakRssBytes).toBeGreaterThan(0);
      // verify's report, one round: a tiny checkpoint is checked in one thread on 1 or 2 CPUs
      // (threads wait for 3 GB there), in up to one per CPU (at most the default 8 jobs) on more
      expect(s.verifyThreads).toHaveLength(1);
      const threads = defined(s.verifyThreads[0], "verify's thread count");
      if (json.machine.cpus <= 2) {
        expect(threads).toBe(1);
      } else {
        expect(threads).toBeGreaterThanOrEqual(1);
        expect(threads).toBeLessThanOrEqual(Math.min(8, json.machine.cpus));
      }
      // the write commands' threads, from their --json: one on 1 or 2 CPUs; a TP1 file is one file
      expect(Object.keys(s.writeThreads).sort()).toEqual(["hf2mcore tp1", "hf2mcore tp4 ep4", "reshard tp4ep4 -> tp2 pp2 ep2"]);
      expect(s.writeThreads["hf2mcore tp1"]).toEqual([1]);
      for (const counts of Object.values(s.writeThreads)) {
        expect(counts).toHaveLength(1);
        expect(counts[0]).toBeGreaterThanOrEqual(1);
        expect(counts[0]).toBeLessThanOrEqual(json.machine.cpus <= 2 ? 1 : Math.min(8, json.machine.cpus));
      }
    }
    // Per size: 6 ratios, 6 RSS limits, 2 torch ratios; then 6 RSS growths from the small to the large size.
    expect(json.targets).toHaveLength(2 * 14 + 6);
    for (const t of json.targets) {
      expect(typeof t.met).toBe("boolean");
      expect(["<=", ">="]).toContain(t.compare);
    }
  });
});

describe("bench --repeat", () => {
  const run = (name: string, ratio: number, peakRssBytes: number): Run => ({
    name, argv: [name], seconds: ratio, bytes: 1, gbPerSecond: 1 / ratio, peakRssBytes, userSeconds: 0, systemSeconds: 0,
    baseline: "copy", baselineGbPerSecond: 1, ratio, ratioTarget: 1.15,
  });

  it("reports each command's median round, every round's ratio and the highest peak RSS", () => {
    const rounds = [
      [run("a", 1.4, 10), run("b", 0.9, 50)],
      [run("a", 1.0, 30), run("b", 2.0, 40)],
      [run("a", 1.1, 20), run("b", 1.0, 60)],
    ];
    const [a, b] = medianRuns(rounds);
    expect([a?.ratio, a?.seconds, a?.roundRatios, a?.peakRssBytes]).toEqual([1.1, 1.1, [1.4, 1.0, 1.1], 30]);
    expect([b?.ratio, b?.roundRatios, b?.peakRssBytes]).toEqual([1.0, [0.9, 2.0, 1.0], 60]);
    // an even count takes the slower middle round; one round is returned as it is
    expect(medianRuns(rounds.slice(0, 2))[1]?.ratio).toBe(2.0);
    expect(medianRuns(rounds.slice(0, 1))[0]).toEqual(rounds[0]?.[0]);
  });

  it("runs the whole sequence again per round, cold if asked (tiny, not timed)", async () => {
    const dir = await makeTempDir("mc-bench-");
    const out = join(dir, "bench.json");
    const args = ["--sizes", "4MiB", "--experts", "16", "--repeat", "2", "--cache", "cold", "--python", pythonWithTorch(), "--dir", join(dir, "work"), "--out", out, "--quiet"];
    const result = spawnSync(process.execPath, [join(REPO, "dist", "bench", "main.js"), ...args], { encoding: "utf8", maxBuffer: 16 << 20 });
    expect(result.status, result.stderr).toBe(0);
    const json = JSON.parse(await readFile(out, "utf8")) as BenchResults;
    expect(json.options.repeat).toBe(2);
    expect(json.options.cache).toBe("cold");
    expect(json.options.experts).toBe(16);
    expect(json.method.cache).toMatch(/^cold: /);
    expect(result.stdout).toContain("page cache: cold: ");
    const size = defined(json.sizes[0], "the 4 MiB size");
    expect(size.model.experts).toBe(16);
    expect(result.stdout).toContain("16 experts");
    expect(size.baselines.copy.samples).toHaveLength(10);
    expect(size.baselines.read.samples).toHaveLength(8);
    // the torch baseline runs once; it is compared with the hf2mcore run shown (the median round)
    const torch = defined(size.torch, "torch baseline");
    const shown = defined(size.runs[0], "hf2mcore tp4 ep4");
    expect(torch.speedup).toBeCloseTo(torch.run.seconds / shown.seconds, 9);
    expect(torch.memoryRatio).toBeCloseTo(torch.run.peakRssBytes / shown.peakRssBytes, 9);
    expect(size.verifyThreads).toHaveLength(2);
    expect(size.writeThreads["hf2mcore tp4 ep4"]).toHaveLength(2);
    for (const r of size.runs) {
      expect(r.roundRatios).toHaveLength(2);
      expect(r.ratio).toBe(Math.max(...(r.roundRatios ?? [])));
    }
    expect(result.stdout).toContain("rounds: ");
  });
});
