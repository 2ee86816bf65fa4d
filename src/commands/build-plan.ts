import { loadMegatronProfiles } from "./tables.js";
import type { HfModel } from "./hf-input.js";
import { megatronArgs, type ArgValue } from "../megatron/args.js";
import { trainingFlags } from "../megatron/training-flags.js";
import { planConversion, type ConversionPlan } from "../mapping/plan.js";
import type { ExpertImpl, LayerSpec } from "../mapping/profiles.js";
import { validateLayout, type ParallelLayout } from "../model/parallel-layout.js";
import type { Dtype } from "../model/tensor.js";

/** What the user chose for the Megatron side. */
export interface TargetOptions {
  readonly layout: ParallelLayout;
  readonly spec: LayerSpec;
  readonly experts: ExpertImpl;
  /** undefined keeps the source dtype. */
  readonly dtype?: Dtype | undefined;
  readonly iteration: number | "release";
}

export interface BuiltPlan {
  readonly plan: ConversionPlan;
  readonly args: Map<string, ArgValue>;
  readonly flags: string[];
}

/** Layout checks, the rank-file plan, args and training flags for an opened HF model. */
export async function buildPlan(model: HfModel, target: TargetOptions): Promise<BuiltPlan> {
  const layout = validateLayout(target.layout, model.dims);
  const profiles = await loadMegatronProfiles();
  const plan = planConversion(model.bindings, model.dims, { layout, spec: target.spec, experts: target.experts, dtype: target.dtype }, profiles);
  const args = megatronArgs({
    dims: model.dims,
    layout,
    paddedVocab: plan.paddedVocab,
    spec: target.spec,
    groupedGemm: profiles.experts[target.experts].grouped,
    legacyGroupedGemm: target.experts === "grouped",
    dtype: target.dtype ?? model.dims.dtype,
    iteration: target.iteration === "release" ? 0 : target.iteration,
    tableArgs: model.table.megatronArgs,
  });
  return { plan, args, flags: trainingFlags(args) };
}
