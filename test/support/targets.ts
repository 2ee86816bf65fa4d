import type { TargetOptions } from "../../src/commands/build-plan.js";
import type { ExpertImpl, LayerSpec } from "../../src/mapping/profiles.js";
import type { ParallelLayout } from "../../src/model/parallel-layout.js";

export function targetOf(l: Partial<ParallelLayout>, spec: LayerSpec = "te", experts: ExpertImpl = "sequential"): TargetOptions {
  return {
    layout: { tp: 1, pp: 1, ep: 1, vpp: 1, makeVocabDivisibleBy: 128, ...l, etp: l.tp ?? 1 },
    spec,
    experts,
    iteration: "release",
  };
}
