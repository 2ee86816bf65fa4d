import { loadMegatronProfiles } from "./tables.js";
import type { HfModel } from "./hf-input.js";
import { megatronArgs, type ArgValue } from "../megatron/args.js";
import { trainingFlags } from "../megatron/training-flags.js";
import { planConversion, type ConversionPlan } from "../mapping/plan.js";
import type { ExpertImpl, LayerSpec, MegatronProfiles } from "../mapping/profiles.js";
import type { MappingTable } from "../mapping/table.js";
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
  const args = argsFor(plan, target, model.table, profiles);
  return { plan, args, flags: trainingFlags(args) };
}

/** The `args` Namespace for a plan: dims and layout from the plan, constants from the table. */
export function argsFor(plan: ConversionPlan, target: TargetOptions, table: MappingTable, profiles: MegatronProfiles): Map<string, ArgValue> {
  return megatronArgs({
    dims: plan.dims,
    layout: plan.layout,
    paddedVocab: plan.paddedVocab,
    spec: target.spec,
    groupedGemm: profiles.experts[target.experts].grouped,
    legacyGroupedGemm: target.experts === "grouped",
    dtype: target.dtype ?? plan.dims.dtype,
    iteration: target.iteration === "release" ? 0 : target.iteration,
    tableArgs: table.megatronArgs,
  });
}
