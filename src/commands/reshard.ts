import { argsFor, type TargetOptions } from "./build-plan.js";
import { loadMegatronProfiles } from "./tables.js";
import { openMcoreModel, type McoreInputOptions } from "./mcore-input.js";
import { FLAGS_FILE, flagsFileOf, MANIFEST_FILE } from "./manifest.js";
import { writerThreads } from "./write-threads.js";
import type { ProgressListener } from "../engine/progress.js";
import { writeMegatronCheckpoint, type WriteOutcome } from "../engine/write-megatron.js";
import type { WorkerShare } from "../engine/worker-split.js";
import { trainingFlags } from "../megatron/training-flags.js";
import { composeThrough, invertPlan } from "../mapping/invert.js";
import { planConversion, type ConversionPlan } from "../mapping/plan.js";
import { resolveTable } from "../mapping/resolve.js";
import { validateLayout } from "../model/parallel-layout.js";
import { PACKAGE_VERSION } from "../package-root.js";

export interface ReshardOptions extends TargetOptions {
  readonly mcore: string;
  readonly out: string;
  readonly jobs: number;
  readonly source?: McoreInputOptions;
  readonly dryRun?: boolean;
  readonly force?: boolean;
  readonly checkFinite?: boolean;
  readonly onProgress?: ProgressListener;
  /** Write only this worker's share of the rank files (`--worker I/N`). */
  readonly worker?: WorkerShare | undefined;
  /** Write in worker threads too: true, false, or by default when they pay (commands/write-threads.ts). */
  readonly threads?: boolean;
}

/**
 * reshard: Megatron (layout A) -> Megatron (layout B), reading each target rectangle straight
 * from the source rank files; no HF copy is written.
 */
export async function reshard(options: ReshardOptions): Promise<{ plan: ConversionPlan; flags: string[]; outcome?: WriteOutcome; seconds: number }> {
  const started = performance.now();
  const model = await openMcoreModel(options.mcore, options.source ?? {});
  try {
    const layout = validateLayout(options.layout, model.dims);
    const bindings = resolveTable(model.table, model.hfTensors, model.dims, options.mcore);
    const target = planConversion(bindings, model.dims, { layout, spec: options.spec, experts: options.experts, dtype: options.dtype }, await loadMegatronProfiles());
    const recipes = invertPlan(model.plan, model.hfTensors);
    const plan = withSourcesInA(target, recipes);
    const args = argsFor(plan, { ...options, dtype: options.dtype ?? model.detected.dtype }, model.table, await loadMegatronProfiles());
    const flags = trainingFlags(args);
    let outcome: WriteOutcome | undefined;
    if (options.dryRun !== true) {
      const manifest = {
        tool: "megatron-convert",
        version: PACKAGE_VERSION,
        source: { path: options.mcore, table: model.table.name, resharded: true },
        model: model.dims,
        layout,
        spec: options.spec,
        experts: options.experts,
        dtype: options.dtype ?? "keep",
        iteration: options.iteration,
        paddedVocab: plan.paddedVocab,
        totalBytes: plan.totalBytes,
        megatronFlags: flags,
      };
      outcome = await writeMegatronCheckpoint({
        out: options.out,
        worker: options.worker,
        plan,
        space: model.space,
        args,
        iteration: options.iteration,
        jobs: options.jobs,
        threads: writerThreads(plan, options.jobs, options.threads, { kind: "mcore", dir: options.mcore, options: options.source ?? {} }),
        force: options.force === true,
        checkFinite: options.checkFinite === true,
        extraFiles: new Map([
          [MANIFEST_FILE, `${JSON.stringify(manifest, null, 2)}\n`],
          [FLAGS_FILE, flagsFileOf(flags)],
        ]),
        ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
      });
    }
    return { plan, flags, ...(outcome === undefined ? {} : { outcome }), seconds: (performance.now() - started) / 1000 };
  } finally {
    await model.close();
  }
}

function withSourcesInA(target: ConversionPlan, recipes: ReturnType<typeof invertPlan>): ConversionPlan {
  return {
    ...target,
    files: target.files.map((file) => ({
      ...file,
      models: file.models.map((model) => ({
        ...model,
        entries: model.entries.map((e) => {
          if (e.kind !== "tensor") {
            return e;
          }
          return {
            ...e,
            segments: e.segments.flatMap((s) => {
              const recipe = recipes.get(s.source);
              if (recipe === undefined) {
                throw new Error(`internal: no source for ${s.source}`);
              }
              return composeThrough(s, recipe);
            }),
          };
        }),
      })),
    })),
  };
}
