import { writeFile } from "node:fs/promises";
import { InvalidArgumentError } from "commander";
import { formatBytes, table, writeErr, writeOut } from "./print.js";
import { ExitWithCode, UsageError } from "../errors.js";
import type { ForwardReport, ForwardStage } from "../verify/forward-report.js";
import type { ForwardOptions } from "../verify/forward.js";

/** The verify --forward flags: the verifier's options as the command line spells them. */
export type ForwardFlags = Omit<ForwardOptions, "hf" | "mcore" | "timeoutMs" | "onProgress" | "env"> & {
  readonly report?: string;
  readonly json?: boolean;
  readonly quiet?: boolean;
  readonly timeout?: number;
};

/** commander parser for a flag with a closed set of values. */
export function oneOf<T extends string>(flag: string, values: readonly T[]): (value: string) => T {
  return (value) => {
    if (!(values as readonly string[]).includes(value)) {
      throw new InvalidArgumentError(`${flag} must be one of ${values.join(", ")}; got "${value}"`);
    }
    return value as T;
  };
}

/** commander parser for a positive finite number (tolerances). */
export function positiveNumber(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === "" || !Number.isFinite(n) || n <= 0) {
      throw new InvalidArgumentError(`${flag} must be a positive number; got "${value}"`);
    }
    return n;
  };
}

/** verify <hf> <mcore> --forward: exit 0 pass, 1 a difference (ExitWithCode), errors exit 2 through cli/main.ts. */
export async function runVerifyForward(hf: string, mcore: string, flags: ForwardFlags): Promise<void> {
  if (flags.text !== undefined && flags.tokens !== undefined) {
    throw new UsageError("--text and --tokens cannot be used together");
  }
  const { verifyForward } = await import("../verify/forward.js");
  const showProgress = flags.json !== true && flags.quiet !== true && process.stderr.isTTY;
  const checked = await verifyForward({
    hf: await localHfFolder(hf),
    mcore,
    python: flags.python,
    device: flags.device,
    tokens: flags.tokens,
    text: flags.text,
    seqLen: flags.seqLen,
    batch: flags.batch,
    computeDtype: flags.computeDtype,
    tol: flags.tol,
    hiddenTol: flags.hiddenTol,
    engine: flags.engine,
    hfImpl: flags.hfImpl,
    timeoutMs: flags.timeout === undefined ? undefined : flags.timeout * 1000,
    onProgress: showProgress ? (line) => writeErr(`  ${line}`) : undefined,
  });
  const report = { ...checked, hf };
  const json = `${JSON.stringify(report, null, 2)}\n`;
  if (flags.report !== undefined) {
    await writeFile(flags.report, json);
  }
  writeOut(flags.json === true ? json : describe(report));
  if (!report.ok) {
    throw new ExitWithCode(1);
  }
}

/**
 * The Python verifier reads a local folder: a Hub repo id (org/name[@rev]) is downloaded into the HF
 * cache first (config, index, shards, tokenizer files) and its snapshot folder used; a path is kept.
 */
export async function localHfFolder(hf: string): Promise<string> {
  const { hubRefOf, openHfModel } = await import("../commands/hf-input.js");
  if ((await hubRefOf(hf)) === undefined) {
    return hf;
  }
  const model = await openHfModel(hf);
  await model.close();
  return model.hub?.snapshotDir ?? hf;
}

const num = (x: number | null | undefined, digits = 2): string => (x === null || x === undefined ? "n/a" : x === 0 ? "0" : x.toExponential(digits));

function stageRow(s: ForwardStage): string[] {
  return [s.name, num(s.maxAbsDiff), num(s.scale), num(s.relRms), num(s.measure), s.ok ? "ok" : s.problem ?? "DIFFERENT"];
}

/** The terminal summary: verdict, losses, per-stage table, first difference, resources. */
export function describe(r: ForwardReport): string {
  const l = r.losses;
  const m = r.megatronSide;
  const layout = `TP=${m.layout.tp} PP=${m.layout.pp} EP=${m.layout.ep}${m.layout.vpp > 1 ? ` VPP=${m.layout.vpp}` : ""}, ${m.spec ?? "?"} spec, ${m.experts ?? "?"} experts`;
  const lines = [
    `verify forward: ${r.ok ? "PASS" : "FAIL"}`,
    `  HF side:       ${r.hfSide.implementation} (${r.hfSide.reason}), ${r.hfSide.layout} safetensors, ${r.hfSide.weightDtype} weights`,
    `  Megatron side: ${m.engine} engine over ${m.layout.rankFiles} rank files (${layout})`,
    `  input:         ${r.input.batch} x ${r.input.seqLen} tokens, ${r.input.source}${r.input.tokenization === null ? "" : ` (${r.input.tokenization})`}; device ${r.device}, compute ${r.computeDtype}`,
    "",
    table([
      ["loss", "hf", "megatron", "abs diff", "rel diff", "tolerance", ""],
      ["", l.hf === null ? "n/a" : l.hf.toFixed(6), l.megatron === null ? "n/a" : l.megatron.toFixed(6), num(l.absDiff), num(l.relDiff), num(r.tolerance.loss, 0), l.ok ? "ok" : "DIFFERENT"],
    ]),
    "",
    table([["stage", "max|diff|", "scale", "rel rms", "measure", "result"], ...r.stages.map(stageRow)]),
    `  stage measure: ${r.tolerance.hiddenMeasure} <= ${num(r.tolerance.hidden, 0)}`,
  ];
  const f = r.firstDifference;
  if (f !== null) {
    lines.push(`first difference: ${f.layer === null ? f.name : `layer ${f.layer}`} (measure ${num(f.measure)} > ${num(r.tolerance.hidden, 0)}, max|diff| ${num(f.maxAbsDiff)})`);
  }
  if (r.unexercisedExperts.length > 0) {
    lines.push(`not exercised (no token routed there, so not checked): ${r.unexercisedExperts.map(([layer, e]) => `layer ${layer} expert ${e}`).join(", ")}`);
  }
  const { afterHf, end } = r.peakMemory;
  const cuda = end.cudaBytes === null ? "" : `, CUDA ${formatBytes(afterHf.cudaBytes ?? 0)} (HF side) / ${formatBytes(end.cudaBytes)} (Megatron side)`;
  lines.push(
    `peak memory: ${formatBytes(end.rssBytes)} RSS${cuda}; ` +
      `time ${r.seconds.toFixed(2)} s (HF ${r.hfSide.seconds.toFixed(2)} s, Megatron ${m.seconds.toFixed(2)} s); python ${r.python.path} (torch ${r.python.torch})`,
  );
  return lines.join("\n");
}
