import type { BuiltPlan, TargetOptions } from "./build-plan.js";
import type { HfModel } from "./hf-input.js";
import { rankFileBytes } from "../mapping/plan.js";
import { rankFilePath } from "../megatron/checkpoint-layout.js";
import { PACKAGE_VERSION } from "../package-root.js";

export const MANIFEST_FILE = "megatron-convert.json";
export const FLAGS_FILE = "megatron-flags.txt";

export interface RankFileSummary {
  readonly path: string;
  readonly rank: { tp: number; pp: number; ep: number };
  readonly tensors: number;
  readonly extraStates: number;
  readonly bytes: number;
}

export function rankFileSummaries(built: BuiltPlan, iteration: TargetOptions["iteration"]): RankFileSummary[] {
  return built.plan.files.map((file) => {
    const entries = file.models.flatMap((m) => m.entries);
    const tensors = entries.filter((e) => e.kind === "tensor");
    return {
      path: rankFilePath(file.rank, built.plan.layout, iteration),
      rank: file.rank,
      tensors: tensors.length,
      extraStates: entries.length - tensors.length,
      bytes: rankFileBytes(file),
    };
  });
}

/** The manifest written beside the checkpoint: how it was made, so a reader need not guess. */
export function manifestOf(model: HfModel, built: BuiltPlan, target: TargetOptions): string {
  const { plan } = built;
  return `${JSON.stringify(
    {
      tool: "megatron-convert",
      version: PACKAGE_VERSION,
      source: { path: model.dir, table: model.table.name, architectures: model.config["architectures"] ?? null },
      model: model.dims,
      layout: plan.layout,
      spec: plan.spec,
      experts: plan.experts,
      dtype: target.dtype ?? "keep",
      iteration: target.iteration,
      paddedVocab: plan.paddedVocab,
      totalBytes: plan.totalBytes,
      files: rankFileSummaries(built, target.iteration),
      megatronFlags: built.flags,
    },
    null,
    2,
  )}\n`;
}

export function flagsFileOf(flags: readonly string[]): string {
  return `# Megatron-LM flags that match this checkpoint (written by megatron-convert)\n${flags.join(" \\\n")}\n`;
}
