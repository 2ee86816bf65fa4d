import { formatBytes, writeOut } from "./print.js";
import { downloadHfConfig } from "./hf-download.js";
import { progressReporter } from "./progress-bars.js";
import { threadsJson, threadsText, workerJson, workerLine } from "./worker-report.js";
import type { TargetOptions } from "../commands/build-plan.js";
import { mcore2hf } from "../commands/mcore2hf.js";
import { reshard } from "../commands/reshard.js";
import type { WorkerShare } from "../engine/worker-split.js";
import type { ExpertImpl, LayerSpec } from "../mapping/profiles.js";
import type { Dtype } from "../model/tensor.js";

export interface McoreFlags {
  hfConfig?: string;
  model?: string;
  vocabSize?: number;
  iteration?: number | "release";
  tp?: number;
  pp?: number;
  ep?: number;
  spec?: LayerSpec;
  experts?: ExpertImpl;
}

export async function runMcore2Hf(
  mcore: string,
  out: string,
  flags: McoreFlags & { maxShardSize: number; dtype: Dtype | "keep"; force?: boolean; checkFinite?: boolean; json?: boolean; quiet?: boolean },
): Promise<void> {
  const hfConfig = await hfConfigFolder(flags);
  const progress = await progressReporter({ json: flags.json === true, quiet: flags.quiet === true });
  try {
    const result = await mcore2hf({
      mcore,
      out,
      maxShardBytes: flags.maxShardSize,
      dtype: flags.dtype === "keep" ? undefined : flags.dtype,
      iteration: flags.iteration,
      hfConfig,
      vocabSize: flags.vocabSize,
      model: flags.model,
      layout: { tp: flags.tp, pp: flags.pp, ep: flags.ep, ...(flags.tp === undefined ? {} : { etp: flags.tp }) },
      spec: flags.spec,
      experts: flags.experts,
      force: flags.force === true,
      checkFinite: flags.checkFinite === true,
      onProgress: progress.listener,
    });
    progress.stop();
    if (flags.json === true) {
      writeOut(JSON.stringify({ out, ...result }, null, 2));
      return;
    }
    writeOut(`wrote ${out}: ${result.tensors} tensors, ${formatBytes(result.bytes)} in ${result.files.length} safetensors file(s), ${result.seconds.toFixed(2)} s`);
    for (const note of result.notes) {
      writeOut(`note: ${note}`);
    }
  } finally {
    progress.stop();
  }
}

export async function runReshard(
  mcore: string,
  out: string,
  target: TargetOptions,
  flags: McoreFlags & { sourceIteration?: number | "release"; jobs: number; dryRun?: boolean; force?: boolean; checkFinite?: boolean; json?: boolean; quiet?: boolean; worker?: WorkerShare },
): Promise<void> {
  const hfConfig = await hfConfigFolder(flags);
  const progress = await progressReporter({ json: flags.json === true, quiet: flags.quiet === true || flags.dryRun === true });
  try {
    const result = await reshard({
      ...target,
      mcore,
      out,
      jobs: flags.jobs,
      dryRun: flags.dryRun === true,
      force: flags.force === true,
      checkFinite: flags.checkFinite === true,
      source: { iteration: flags.sourceIteration, hfConfig, vocabSize: flags.vocabSize, model: flags.model },
      onProgress: progress.listener,
      worker: flags.worker,
    });
    progress.stop();
    const summary = { out, files: result.plan.files.length, totalBytes: result.plan.totalBytes, seconds: result.seconds, written: flags.dryRun !== true, ...threadsJson(result.outcome), megatronFlags: result.flags, ...workerJson(flags.worker, result.outcome) };
    if (flags.json === true) {
      writeOut(JSON.stringify(summary, null, 2));
      return;
    }
    if (flags.worker !== undefined && result.outcome !== undefined) {
      writeOut(workerLine(out, flags.worker, result.outcome, result.seconds));
      return;
    }
    writeOut(
      `${flags.dryRun === true ? "would write" : "wrote"} ${out}: ${result.plan.files.length} rank files, ${formatBytes(result.plan.totalBytes)}` +
        `${flags.dryRun === true ? "" : ` in ${result.seconds.toFixed(2)} s${threadsText(result.outcome)}`}`,
    );
  } finally {
    progress.stop();
  }
}

/** --hf-config: a repo id's snapshot folder (fetched with download bars), or the local path as given. */
async function hfConfigFolder(flags: { hfConfig?: string; json?: boolean; quiet?: boolean }): Promise<string | undefined> {
  return flags.hfConfig === undefined ? undefined : downloadHfConfig(flags.hfConfig, flags);
}
