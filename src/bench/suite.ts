import { execFileSync } from "node:child_process";
import { copyFile, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { measureNode, measurePython } from "./measure.js";
import { evictTrees } from "./page-cache.js";
import { TORCH_BASELINE_PY, TORCH_LOAD_CHECK_PY } from "./python-scripts.js";
import { baselineOf, compared, medianRuns, runOf, type Baseline, type CacheMode, type Run, type SizeResult, type TorchComparison, type TorchLoadCheck } from "./results.js";
import { largestTensorBytes, tensorSpecs, writeSyntheticModel, type SyntheticDims } from "./synthetic.js";
import { treeBytes } from "./tree.js";
import { PACKAGE_ROOT } from "../package-root.js";

export interface SuiteOptions {
  /** This size's work folder (created; removed afterwards unless keep). */
  readonly root: string;
  readonly jobs: number | undefined;
  readonly python: { readonly python: string; readonly torch: string } | undefined;
  readonly torchLoadCheck: boolean;
  readonly verifyTorchOutput: boolean;
  readonly keep: boolean;
  /** Rounds of the whole sequence (>= 1); each command reports its median round. */
  readonly repeat: number;
  readonly cache: CacheMode;
  readonly log: (line: string) => void;
}

/** Issue 6 targets, as time-per-byte ratios to the baseline (verify: >= 0.9x speed = <= 1/0.9). */
export const RATIO_TARGETS = { hf2mcore: 1.15, mcore2hf: 1.25, reshard: 1.25, verify: 1 / 0.9 } as const;

/** The run of `verify` against the TP4 EP4 checkpoint (the one whose thread count is reported). */
export const VERIFY_RUN = "verify tp4ep4";
export const RSS_BASE_BYTES = 256 << 20;

/** Runs before each measured step: with `cold`, every file of this size's folder leaves the page cache. */
async function beforeStep(o: SuiteOptions): Promise<void> {
  if (o.cache === "cold") {
    await evictTrees([o.root]);
  }
}

const BIN = join(PACKAGE_ROOT, "bin", "megatron-convert.js");
const IO = fileURLToPath(new URL("./io-baseline.js", import.meta.url));
const TP1_FILE = join("release", "mp_rank_00", "model_optim_rng.pt");

/**
 * One model size: generate it, then run (each as its own process; with `cache: "warm"` the source
 * stays in the page cache, with "cold" every file is dropped from it before each step)
 * copy, hf2mcore TP4 EP4, torch baseline, copy, hf2mcore TP1, copy, reshard, copy, mcore2hf,
 * copy; read, verify, read; read, verify of mcore2hf's HF folder against the source, read. Each
 * command is compared with the baseline runs right before and after it, so neither side runs
 * first and slow drifts of the disk's speed cancel out.
 * With `repeat` > 1 that sequence runs again (the torch runs only once) and each command reports
 * the round with its median ratio: a virtual disk whose write speed swings 3x within minutes
 * makes a single round's ratio a coin toss.
 */
export async function runSize(requested: number, dims: SyntheticDims, o: SuiteOptions): Promise<SizeResult> {
  const p = (name: string): string => join(o.root, name);
  const usage = p("usage.json");
  const hf = p("hf");
  await mkdir(o.root, { recursive: true });
  const t = performance.now();
  const generated = await writeSyntheticModel(hf, dims);
  const generateSeconds = (performance.now() - t) / 1000;
  o.log(`generated ${fmtBytes(generated.bytes)} in ${generated.shards} shards (hidden ${dims.hidden}, ${dims.layers} layers) in ${generateSeconds.toFixed(1)} s`);
  const jobs = o.jobs === undefined ? [] : ["--jobs", String(o.jobs)];
  const done = async (dir: string): Promise<void> => (o.keep ? undefined : rm(dir, { recursive: true, force: true }));

  const io = async (name: string, args: string[], bytesOf: string[]): Promise<Run> => {
    await beforeStep(o);
    const m = await measureNode(name, IO, args, usage);
    const run = runOf(name, ["io-baseline", ...args], m, await treeBytes(bytesOf));
    o.log(`${name}: ${run.seconds.toFixed(2)} s, ${run.gbPerSecond.toFixed(2)} GB/s`);
    return run;
  };
  let tag = "";
  const writeThreads: Record<string, number[]> = {};
  const cli = async (name: string, args: string[], out: string | undefined, readTrees: string[] = []): Promise<Run> => {
    await beforeStep(o);
    const m = await measureNode(name, BIN, args, usage);
    if (args.includes("--json")) {
      (writeThreads[name] ??= []).push(printedThreads(name, m.output));
    }
    const run = runOf(name, ["megatron-convert", ...args], m, await treeBytes(out === undefined ? readTrees : [out]));
    o.log(`${name}${tag}: ${run.seconds.toFixed(2)} s, ${run.gbPerSecond.toFixed(2)} GB/s, peak RSS ${fmtBytes(run.peakRssBytes)}`);
    return run;
  };

  // Warm-up: lets the disk settle after generation (and, with a warm cache, reads the source into it).
  await io("warm-up copy", ["copy", p("copy"), hf], [hf]);
  await rm(p("copy"), { recursive: true, force: true });
  const allCopies: Run[] = [];
  const allReads: Run[] = [];
  const rounds: Run[][] = [];
  let torch: TorchRun | null = null;
  let loadCheck: TorchLoadCheck | null = null;
  const verifyThreads: number[] = [];
  for (let round = 1; round <= o.repeat; round++) {
    tag = o.repeat > 1 ? ` (round ${round})` : "";
    const copies: Run[] = [];
    const copy = async (): Promise<void> => {
      copies.push(await io(`copy ${allCopies.length + copies.length + 1}`, ["copy", p("copy"), hf], [hf]));
      await rm(p("copy"), { recursive: true, force: true });
    };
    await rm(p("tp4ep4"), { recursive: true, force: true });
    await copy();
    const tp4 = await cli("hf2mcore tp4 ep4", ["hf2mcore", hf, p("tp4ep4"), "--tp", "4", "--ep", "4", "--quiet", "--json", ...jobs], p("tp4ep4"));
    if (round === 1) {
      torch = o.python === undefined ? null : await torchBaseline(o.python.python, hf, p("tp4ep4"), p("torch-tp4ep4"), o);
      await done(p("torch-tp4ep4"));
    }
    await copy();
    await rm(p("tp1"), { recursive: true, force: true });
    const tp1 = await cli("hf2mcore tp1", ["hf2mcore", hf, p("tp1"), "--tp", "1", "--pp", "1", "--ep", "1", "--quiet", "--json", ...jobs], p("tp1"));
    if (round === 1) {
      loadCheck = o.torchLoadCheck && o.python !== undefined ? await torchLoad(o.python.python, hf, join(p("tp1"), TP1_FILE), o) : null;
    }
    await done(p("tp1"));
    await copy();
    await rm(p("tp2pp2ep2"), { recursive: true, force: true });
    const reshard = await cli("reshard tp4ep4 -> tp2 pp2 ep2", ["reshard", p("tp4ep4"), p("tp2pp2ep2"), "--tp", "2", "--pp", "2", "--ep", "2", "--quiet", "--json", ...jobs], p("tp2pp2ep2"));
    await done(p("tp2pp2ep2"));
    await copy();
    await rm(p("hf-back"), { recursive: true, force: true });
    const back = await cli("mcore2hf tp4ep4", ["mcore2hf", p("tp4ep4"), p("hf-back"), "--hf-config", hf, "--quiet"], p("hf-back"));
    await copy();
    const reads: Run[] = [];
    const read = async (trees: string[]): Promise<Run> => {
      const run = await io(`read ${allReads.length + reads.length + 1}`, ["read", ...trees], trees);
      reads.push(run);
      return run;
    };
    const readBefore = await read([hf, p("tp4ep4")]);
    const report = p("verify-report.json");
    const verify = await cli(VERIFY_RUN, ["verify", hf, p("tp4ep4"), "--report", report, ...jobs], undefined, [hf, p("tp4ep4")]);
    verifyThreads.push(await reportedThreads(report));
    const readAfter = await read([hf, p("tp4ep4")]);
    // the round-trip check a user runs after mcore2hf: HF against HF, against reading both folders
    const readBackBefore = await read([hf, p("hf-back")]);
    const roundTrip = await cli("verify hf vs hf-back", ["verify", hf, p("hf-back")], undefined, [hf, p("hf-back")]);
    const readBackAfter = await read([hf, p("hf-back")]);
    await done(p("hf-back"));
    // Each command against the mean of the two baseline runs right before and after it.
    const around = (i: number): Baseline => baselineOf(copies.slice(i, i + 2));
    rounds.push([
      compared(tp4, "copy", around(0), RATIO_TARGETS.hf2mcore),
      compared(tp1, "copy", around(1), RATIO_TARGETS.hf2mcore),
      compared(reshard, "copy", around(2), RATIO_TARGETS.reshard),
      compared(back, "copy", around(3), RATIO_TARGETS.mcore2hf),
      compared(verify, "read", baselineOf([readBefore, readAfter]), RATIO_TARGETS.verify),
      compared(roundTrip, "read", baselineOf([readBackBefore, readBackAfter]), RATIO_TARGETS.verify),
    ]);
    allCopies.push(...copies);
    allReads.push(...reads);
  }
  if (!o.keep) {
    await rm(o.root, { recursive: true, force: true });
  }
  const runs = medianRuns(rounds);
  return {
    requestedBytes: requested,
    model: { ...dims, bytes: generated.bytes, shards: generated.shards, tensors: tensorSpecs(dims).length, largestTensorBytes: largestTensorBytes(dims) },
    generateSeconds,
    rssLimitBytes: RSS_BASE_BYTES + 2 * largestTensorBytes(dims),
    baselines: { copy: baselineOf(allCopies), read: baselineOf(allReads) },
    runs,
    // against the hf2mcore tp4 ep4 run the table shows (the median round, its highest peak RSS)
    torch: torch === null || runs[0] === undefined ? null : torchComparison(torch, runs[0]),
    torchLoadCheck: loadCheck,
    verifyThreads,
    writeThreads,
  };
}

/** The thread count that `hf2mcore --json` or `reshard --json` printed last. */
function printedThreads(name: string, output: string): number {
  const found = [...output.matchAll(/"threads": ([0-9]+)/g)].at(-1)?.[1];
  if (found === undefined) {
    throw new Error(`internal: ${name} printed no thread count:\n${output.slice(-2000)}`);
  }
  return Number(found);
}

/** The thread count in a `verify --report` JSON. */
async function reportedThreads(path: string): Promise<number> {
  const report = JSON.parse(await readFile(path, "utf8")) as { threads?: unknown };
  if (typeof report.threads !== "number") {
    throw new Error(`internal: verify's report ${path} has no thread count`);
  }
  return report.threads;
}

type TorchRun = Omit<TorchComparison, "speedup" | "memoryRatio">;

function torchComparison(torch: TorchRun, ours: Run): TorchComparison {
  return { ...torch, speedup: torch.run.seconds / ours.seconds, memoryRatio: torch.run.peakRssBytes / ours.peakRssBytes };
}

async function torchBaseline(python: string, hf: string, ours: string, out: string, o: SuiteOptions): Promise<TorchRun> {
  const script = join(o.root, "torch_baseline.py");
  await writeFile(script, TORCH_BASELINE_PY);
  await beforeStep(o);
  const m = await measurePython("torch baseline", python, script, [hf, out, "4", "4"], join(o.root, "usage.json"));
  const run = runOf("torch baseline tp4 ep4", ["python3", "torch_baseline.py", hf, out, "4", "4"], m, await treeBytes([out]));
  o.log(`${run.name}: ${run.seconds.toFixed(2)} s, ${run.gbPerSecond.toFixed(2)} GB/s, peak RSS ${fmtBytes(run.peakRssBytes)}`);
  let outputVerified: boolean | null = null;
  if (o.verifyTorchOutput) {
    // verify reads the layout from our manifest; the rank files are the torch baseline's.
    await copyFile(join(ours, "megatron-convert.json"), join(out, "megatron-convert.json"));
    await measureNode("verify torch baseline output", BIN, ["verify", hf, out], join(o.root, "usage.json"));
    outputVerified = true;
    o.log("verify of the torch baseline's output: OK");
  }
  return { run, outputVerified };
}

async function torchLoad(python: string, hf: string, file: string, o: SuiteOptions): Promise<TorchLoadCheck> {
  const script = join(o.root, "torch_load_check.py");
  await writeFile(script, TORCH_LOAD_CHECK_PY);
  const fileBytes = (await stat(file)).size;
  const m = await measurePython("torch.load check", python, script, [file], join(o.root, "usage.json"));
  const plan = JSON.parse(execFileSync(process.execPath, [BIN, "plan", hf, "--tp", "1", "--pp", "1", "--ep", "1", "--json"], { encoding: "utf8" })) as {
    files: { tensors: number; bytes: number }[];
  };
  const tensors = Number(m.record["tensors"]);
  const tensorBytes = Number(m.record["tensorBytes"]);
  const planned = plan.files[0];
  const matchesPlan = planned !== undefined && planned.tensors === tensors && planned.bytes === tensorBytes;
  o.log(`torch.load of the TP1 file (${fmtBytes(fileBytes)}${fileBytes > 0xffffffff ? ", zip64" : ""}): ${tensors} tensors, ${matchesPlan ? "as planned" : "NOT as planned"}`);
  return {
    file,
    fileBytes,
    zip64: fileBytes > 0xffffffff,
    seconds: m.seconds,
    peakRssBytes: m.peakRssBytes,
    tensors,
    tensorBytes,
    matchesPlan,
    torchVersion: String(m.record["torchVersion"]),
  };
}

export function fmtBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}
