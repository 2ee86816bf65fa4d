import { buildPlan, type BuiltPlan, type TargetOptions } from "./build-plan.js";
import { openHfModel } from "./hf-input.js";
import { FLAGS_FILE, flagsFileOf, MANIFEST_FILE, manifestOf } from "./manifest.js";
import { writerThreads } from "./write-threads.js";
import type { ProgressListener } from "../engine/progress.js";
import { writeMegatronCheckpoint, type WriteOutcome } from "../engine/write-megatron.js";
import type { WorkerShare } from "../engine/worker-split.js";

export interface Hf2McoreOptions extends TargetOptions {
  readonly hf: string;
  readonly out: string;
  readonly jobs: number;
  readonly dryRun?: boolean;
  readonly force?: boolean;
  readonly checkFinite?: boolean;
  readonly onProgress?: ProgressListener;
  /** Write only this worker's share of the rank files (`--worker I/N`). */
  readonly worker?: WorkerShare | undefined;
  /** Write in worker threads too: true, false, or by default when they pay (commands/write-threads.ts). */
  readonly threads?: boolean;
}

export interface Hf2McoreResult {
  readonly built: BuiltPlan;
  readonly written: boolean;
  /** For a split run: whether this worker published the checkpoint, and how many are done. */
  readonly outcome?: WriteOutcome;
  readonly seconds: number;
}

/** hf2mcore: HF folder -> Megatron-Core legacy checkpoint, planned and checked before a byte is written. */
export async function hf2mcore(options: Hf2McoreOptions): Promise<Hf2McoreResult> {
  const started = performance.now();
  const model = await openHfModel(options.hf, { remote: options.dryRun === true });
  try {
    const built = await buildPlan(model, options);
    if (options.dryRun === true) {
      return { built, written: false, seconds: (performance.now() - started) / 1000 };
    }
    const outcome = await writeMegatronCheckpoint({
      out: options.out,
      worker: options.worker,
      plan: built.plan,
      space: model.space,
      args: built.args,
      iteration: options.iteration,
      jobs: options.jobs,
      threads: writerThreads(built.plan, options.jobs, options.threads, { kind: "hf", dir: model.dir }),
      force: options.force === true,
      checkFinite: options.checkFinite === true,
      extraFiles: new Map([
        [MANIFEST_FILE, manifestOf(model, built, options)],
        [FLAGS_FILE, flagsFileOf(built.flags)],
      ]),
      ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
    });
    return { built, written: true, outcome, seconds: (performance.now() - started) / 1000 };
  } finally {
    await model.close();
  }
}
