import type { ModelDims } from "../model/model-dims.js";
import { formatBytes, table, writeErr, writeOut } from "./print.js";
import { downloadHf } from "./hf-download.js";
import { progressReporter } from "./progress-bars.js";
import type { BuiltPlan, TargetOptions } from "../commands/build-plan.js";
import { buildPlan } from "../commands/build-plan.js";
import { hf2mcore } from "../commands/convert.js";
import { openHfModel } from "../commands/hf-input.js";
import { rankFileSummaries } from "../commands/manifest.js";
import { threadsJson, threadsText, workerJson, workerLine } from "./worker-report.js";
import type { WorkerShare } from "../engine/worker-split.js";

export async function runHf2Mcore(
  hf: string,
  out: string,
  target: TargetOptions,
  flags: { jobs: number; dryRun?: boolean; force?: boolean; checkFinite?: boolean; json?: boolean; quiet?: boolean; worker?: WorkerShare },
): Promise<void> {
  // A repo id is downloaded first (with its own bars), then converted from the cache at the same
  // commit; --dry-run reads only the headers.
  const source = flags.dryRun === true ? hf : await downloadHf(hf, flags);
  const progress = await progressReporter({ json: flags.json === true, quiet: flags.quiet === true || flags.dryRun === true });
  try {
    const result = await hf2mcore({ ...target, hf: source, out, jobs: flags.jobs, dryRun: flags.dryRun === true, force: flags.force === true, checkFinite: flags.checkFinite === true, onProgress: progress.listener, worker: flags.worker });
    progress.stop();
    if (flags.json === true) {
      writeOut(JSON.stringify(planJson(result.built, target, { out, written: result.written, seconds: result.seconds, ...threadsJson(result.outcome), ...workerJson(flags.worker, result.outcome) }), null, 2));
      return;
    }
    writeOut(planText(result.built, target));
    if (flags.worker !== undefined && result.outcome !== undefined) {
      writeOut(`\n${workerLine(out, flags.worker, result.outcome, result.seconds)}`);
    } else if (result.written) {
      const gbps = result.built.plan.totalBytes / 1e9 / Math.max(result.seconds, 1e-9);
      writeOut(`\nwrote ${out} in ${result.seconds.toFixed(2)} s (${gbps.toFixed(2)} GB/s)${threadsText(result.outcome)}; Megatron flags saved in ${out}/megatron-flags.txt`);
    } else {
      writeOut("\n--dry-run: nothing written");
    }
  } finally {
    progress.stop();
  }
}

/** A repo id is read remotely: config and index downloaded, shard headers by Range requests, no shard. */
export async function runPlan(hf: string, target: TargetOptions, flags: { json?: boolean }): Promise<void> {
  const model = await openHfModel(hf, { remote: true });
  try {
    const built = await buildPlan(model, target);
    writeOut(flags.json === true ? JSON.stringify(planJson(built, target, {}), null, 2) : planText(built, target));
  } finally {
    await model.close();
  }
}

function planJson(built: BuiltPlan, target: TargetOptions, extra: Record<string, unknown>): Record<string, unknown> {
  const files = rankFileSummaries(built, target.iteration);
  return {
    layout: built.plan.layout,
    spec: built.plan.spec,
    experts: built.plan.experts,
    dtype: built.plan.dtype ?? "keep",
    iteration: target.iteration,
    paddedVocab: built.plan.paddedVocab,
    files,
    totalTensors: files.reduce((s, f) => s + f.tensors, 0),
    totalBytes: built.plan.totalBytes,
    megatronFlags: built.flags,
    ...extra,
  };
}

function mlpSummary(d: ModelDims): string {
  if (d.experts === 0) {
    return `dense MLP ${d.ffn}`;
  }
  const shared = d.sharedFfn > 0 ? ` + shared expert ${d.sharedFfn}` : "";
  return `${d.experts} experts of ${d.ffn} (top-${d.topk}${d.normTopk ? "" : ", not renormalised"})${shared}`;
}

function planText(built: BuiltPlan, target: TargetOptions): string {
  const { plan } = built;
  const files = rankFileSummaries(built, target.iteration);
  const l = plan.layout;
  const lines = [
    `layout: TP=${l.tp} PP=${l.pp} EP=${l.ep} ETP=${l.etp}${l.vpp > 1 ? ` VPP=${l.vpp}` : ""}` +
      `${l.ppFirstLayers !== undefined || l.ppLastLayers !== undefined ? ` (uneven PP: first ${l.ppFirstLayers ?? "-"}, last ${l.ppLastLayers ?? "-"})` : ""}` +
      `, spec ${plan.spec}, experts ${plan.experts}, dtype ${plan.dtype ?? "keep"}`,
    `model: ${plan.dims.layers} layers, hidden ${plan.dims.hidden}, ${plan.dims.heads} heads / ${plan.dims.kvGroups} query groups, ` +
      `${mlpSummary(plan.dims)}, vocab ${plan.dims.vocab} padded to ${plan.paddedVocab}${plan.dims.tieEmbeddings ? " (tied embeddings)" : ""}`,
    "",
    table([
      ["rank file", "tensors", "_extra_state", "bytes"],
      ...files.map((f) => [f.path, String(f.tensors), String(f.extraStates), formatBytes(f.bytes)]),
      ["total", String(files.reduce((s, f) => s + f.tensors, 0)), String(files.reduce((s, f) => s + f.extraStates, 0)), formatBytes(plan.totalBytes)],
    ]),
    "",
    "Megatron-LM flags for this checkpoint:",
    `  ${built.flags.join(" \\\n  ")}`,
  ];
  return lines.join("\n");
}

export { writeErr };
