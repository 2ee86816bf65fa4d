import type { SyntheticDims } from "./synthetic.js";

/** The bench's JSON file (schemaVersion 1): every number the table shows, and more. */
export interface BenchResults {
  readonly schemaVersion: 1;
  readonly startedAt: string;
  readonly machine: {
    readonly cpus: number;
    readonly cpuModel: string;
    readonly memoryBytes: number;
    readonly node: string;
    readonly platform: string;
    /** 1-minute load average before and after: other work on the machine skews every number. */
    readonly loadAverage: { readonly start: number; readonly end: number };
  };
  readonly options: { readonly sizes: readonly number[]; readonly experts: number; readonly jobs: number | null; readonly repeat: number; readonly cache: CacheMode; readonly workDir: string };
  readonly method: { readonly peakRss: string; readonly wallTime: string; readonly cache: string; readonly ratio: string };
  readonly python: { readonly python: string; readonly torch: string } | null;
  readonly sizes: readonly SizeResult[];
  readonly targets: readonly TargetCheck[];
}

/** `--cache`: where the measured steps' reads come from (README "Benchmark", src/bench/page-cache.ts). */
export const CACHE_MODES = ["warm", "cold"] as const;
export type CacheMode = (typeof CACHE_MODES)[number];

export interface SizeResult {
  readonly requestedBytes: number;
  readonly model: SyntheticDims & { readonly bytes: number; readonly shards: number; readonly tensors: number; readonly largestTensorBytes: number };
  readonly generateSeconds: number;
  /** 256 MiB + 2 x the largest tensor (issue 6). */
  readonly rssLimitBytes: number;
  /** Each baseline's runs (copy: before, between and after the write commands) and their mean. */
  readonly baselines: { readonly copy: Baseline; readonly read: Baseline };
  readonly runs: readonly Run[];
  readonly torch: TorchComparison | null;
  readonly torchLoadCheck: TorchLoadCheck | null;
  /** The threads verify checked in, each round (its report's `threads`: it depends on the CPUs and the bytes). */
  readonly verifyThreads: readonly number[];
  /** The threads each write command wrote its rank files in, each round (its `--json` output's `threads`), by run name. */
  readonly writeThreads: Readonly<Record<string, readonly number[]>>;
}

export interface Baseline {
  readonly samples: readonly Run[];
  readonly seconds: number;
  readonly bytes: number;
  readonly gbPerSecond: number;
}

export interface Run {
  readonly name: string;
  readonly argv: readonly string[];
  readonly seconds: number;
  /** Bytes the throughput counts: written for copy-like work, read for verify and the read baseline. */
  readonly bytes: number;
  readonly gbPerSecond: number;
  readonly peakRssBytes: number;
  readonly userSeconds: number;
  readonly systemSeconds: number;
  /** "copy" or "read" for our commands, null for baseline samples. */
  readonly baseline: "copy" | "read" | null;
  /** Speed of the baseline runs right before and after this one (their mean seconds per byte). */
  readonly baselineGbPerSecond: number | null;
  /** (seconds / bytes) / (baseline seconds / baseline bytes): 1.00 = baseline speed, lower is faster. */
  readonly ratio: number | null;
  readonly ratioTarget: number | null;
  /** With --repeat: every round's ratio, in round order (this run is the median round). */
  readonly roundRatios?: readonly number[];
}

export interface TorchComparison {
  readonly run: Run;
  /**
   * Torch baseline seconds / our hf2mcore seconds at the same layout (TP=4 EP=4), the run the
   * table shows (with --repeat the median round; the torch baseline runs in round 1 only).
   */
  readonly speedup: number;
  /** Torch baseline peak RSS / our hf2mcore peak RSS (with --repeat, our highest round). */
  readonly memoryRatio: number;
  /** true when `verify` passed on the torch baseline's output (--verify-torch-output), else null. */
  readonly outputVerified: boolean | null;
}

export interface TorchLoadCheck {
  readonly file: string;
  readonly fileBytes: number;
  /** The file is over 4 GiB, so its zip needs zip64 records. */
  readonly zip64: boolean;
  readonly seconds: number;
  readonly peakRssBytes: number;
  readonly tensors: number;
  readonly tensorBytes: number;
  readonly matchesPlan: boolean;
  readonly torchVersion: string;
}

export interface TargetCheck {
  readonly target: string;
  readonly size: number;
  readonly value: number;
  readonly limit: number;
  /** "<=" the value must not exceed the limit; ">=" it must reach it. */
  readonly compare: "<=" | ">=";
  readonly met: boolean;
}

export function runOf(name: string, argv: readonly string[], m: { seconds: number; peakRssBytes: number; userSeconds: number; systemSeconds: number }, bytes: number): Run {
  return { name, argv, ...pick(m), bytes, gbPerSecond: bytes / m.seconds / 1e9, baseline: null, baselineGbPerSecond: null, ratio: null, ratioTarget: null };
}

function pick(m: { seconds: number; peakRssBytes: number; userSeconds: number; systemSeconds: number }) {
  return { seconds: m.seconds, peakRssBytes: m.peakRssBytes, userSeconds: m.userSeconds, systemSeconds: m.systemSeconds };
}

export function baselineOf(samples: readonly Run[]): Baseline {
  const seconds = samples.reduce((s, r) => s + r.seconds, 0) / samples.length;
  const bytes = samples.reduce((s, r) => s + r.bytes, 0) / samples.length;
  return { samples, seconds, bytes, gbPerSecond: bytes / seconds / 1e9 };
}

export function compared(run: Run, kind: "copy" | "read", baseline: Baseline, target: number): Run {
  const ratio = run.seconds / run.bytes / (baseline.seconds / baseline.bytes);
  return { ...run, baseline: kind, baselineGbPerSecond: baseline.gbPerSecond, ratio, ratioTarget: target };
}

/**
 * `rounds[r][i]` is command i in round r; returns, per command, the round with the median ratio
 * (the slower of the two middle ones for an even count), carrying every round's ratio; its peakRssBytes is the
 * highest of any round.
 */
export function medianRuns(rounds: readonly (readonly Run[])[]): Run[] {
  const first = rounds[0] ?? [];
  if (rounds.length === 1) {
    return [...first];
  }
  return first.map((_, i) => {
    const runs = rounds.map((r) => r[i] as Run);
    const sorted = [...runs].sort((a, b) => (a.ratio ?? 0) - (b.ratio ?? 0));
    const median = sorted[Math.floor(sorted.length / 2)] as Run;
    return {
      ...median,
      peakRssBytes: Math.max(...runs.map((r) => r.peakRssBytes)),
      roundRatios: runs.map((r) => r.ratio ?? 0),
    };
  });
}
