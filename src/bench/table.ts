import type { Run, SizeResult, TargetCheck } from "./results.js";
import { fmtBytes, VERIFY_RUN } from "./suite.js";

/** Torch baseline: ours must be >= 3x faster and use >= 10x less peak memory (issue 6). */
const TORCH_SPEEDUP = 3;
const TORCH_MEMORY = 10;
/** "Peak RSS the same for both sizes": the largest model may use at most this much more. */
export const RSS_GROWTH_LIMIT = 1.1;

function check(target: string, size: number, value: number, compare: "<=" | ">=", limit: number): TargetCheck {
  return { target, size, value, limit, compare, met: compare === "<=" ? value <= limit : value >= limit };
}

/** Every issue-6 target, per size, plus peak-RSS growth from the smallest to the largest size. */
export function targetChecks(sizes: readonly SizeResult[]): TargetCheck[] {
  const checks: TargetCheck[] = [];
  for (const s of sizes) {
    const size = s.model.bytes;
    for (const run of s.runs) {
      if (run.ratio !== null && run.ratioTarget !== null) {
        checks.push(check(`${run.name}: time per byte vs ${run.baseline ?? ""} baseline`, size, run.ratio, "<=", run.ratioTarget));
      }
      checks.push(check(`${run.name}: peak RSS bytes`, size, run.peakRssBytes, "<=", s.rssLimitBytes));
    }
    if (s.torch !== null) {
      checks.push(check("hf2mcore tp4 ep4: speedup over the torch baseline", size, s.torch.speedup, ">=", TORCH_SPEEDUP));
      checks.push(check("hf2mcore tp4 ep4: peak memory below the torch baseline (x)", size, s.torch.memoryRatio, ">=", TORCH_MEMORY));
    }
  }
  const first = sizes[0];
  const last = sizes[sizes.length - 1];
  if (first !== undefined && last !== undefined && last !== first) {
    for (const run of last.runs) {
      const small = first.runs.find((r) => r.name === run.name);
      if (small !== undefined) {
        checks.push(check(`${run.name}: peak RSS growth from ${fmtBytes(first.model.bytes)} to this size`, last.model.bytes, run.peakRssBytes / small.peakRssBytes, "<=", RSS_GROWTH_LIMIT));
      }
    }
  }
  return checks;
}

function row(cells: readonly string[], widths: readonly number[]): string {
  return cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join("  ");
}

const WIDTHS = [30, 7, 5, 13, 11, 7, 10];
const HEAD = ["command", "seconds", "GB/s", "baseline GB/s", "vs baseline", "target", "peak RSS"];

function runRow(run: Run, rssLimit: number | undefined): string {
  const ratio = run.ratio === null ? "-" : `${run.ratio.toFixed(2)}x`;
  const target = run.ratioTarget === null ? "-" : `<=${run.ratioTarget.toFixed(2)}`;
  const miss = (run.ratio !== null && run.ratioTarget !== null && run.ratio > run.ratioTarget) || (rssLimit !== undefined && run.peakRssBytes > rssLimit);
  const base = run.baselineGbPerSecond === null ? "-" : `${run.baselineGbPerSecond.toFixed(2)} (${run.baseline ?? ""})`;
  const cells = [run.name, run.seconds.toFixed(2), run.gbPerSecond.toFixed(2), base, ratio, target, fmtBytes(run.peakRssBytes)];
  return `${row(cells, WIDTHS)}${miss ? "  MISSED" : ""}`;
}

/** The human summary printed on stdout. */
export function formatTables(sizes: readonly SizeResult[], checks: readonly TargetCheck[]): string {
  const lines: string[] = [];
  for (const s of sizes) {
    const m = s.model;
    lines.push(
      "",
      `model ${fmtBytes(m.bytes)}: hidden ${m.hidden}, ffn ${m.ffn}, ${m.layers} layers, ${m.experts} experts, vocab ${m.vocab}, ${m.tensors} tensors in ${m.shards} shards; ` +
        `largest tensor ${fmtBytes(m.largestTensorBytes)}, peak RSS limit ${fmtBytes(s.rssLimitBytes)}`,
      row(HEAD, WIDTHS),
    );
    for (const sample of [...s.baselines.copy.samples, ...s.baselines.read.samples]) {
      lines.push(runRow(sample, undefined));
    }
    for (const run of s.runs) {
      lines.push(runRow(run, s.rssLimitBytes));
      if (run.roundRatios !== undefined) {
        lines.push(`  rounds: ${run.roundRatios.map((r) => `${r.toFixed(2)}x`).join(" ")} (median shown; peak RSS: highest round)`);
      }
      if (run.name === VERIFY_RUN) {
        lines.push(`  checked in ${[...new Set(s.verifyThreads)].join(" or ")} thread(s)`);
      }
      const written = s.writeThreads[run.name];
      if (written !== undefined) {
        lines.push(`  written in ${[...new Set(written)].join(" or ")} thread(s)`);
      }
    }
    if (s.torch !== null) {
      lines.push(runRow(s.torch.run, undefined));
      lines.push(`  hf2mcore tp4 ep4 vs the torch baseline: ${s.torch.speedup.toFixed(1)}x faster, ${s.torch.memoryRatio.toFixed(1)}x less peak memory`);
    }
    const load = s.torchLoadCheck;
    if (load !== null) {
      lines.push(`  torch.load of the TP1 file (${fmtBytes(load.fileBytes)}${load.zip64 ? ", zip64" : ""}): ${load.tensors} tensors, ${load.matchesPlan ? "as planned" : "NOT AS PLANNED"}, ${load.seconds.toFixed(1)} s`);
    }
  }
  const missed = checks.filter((c) => !c.met);
  lines.push("", `targets: ${checks.length - missed.length} of ${checks.length} met`);
  for (const c of missed) {
    const show = (v: number): string => (c.target.endsWith("bytes") ? fmtBytes(v) : v.toFixed(2));
    lines.push(`  MISSED at ${fmtBytes(c.size)}: ${c.target}: ${show(c.value)}, needs ${c.compare} ${show(c.limit)}`);
  }
  return `${lines.join("\n")}\n`;
}
