import { Option, type Command } from "commander";
import { expertImpl, iteration, layerSpec, outputDtype, positiveInt } from "./parse-options.js";
import type { TargetOptions } from "../commands/build-plan.js";
import { UsageError } from "../errors.js";
import type { ExpertImpl, LayerSpec } from "../mapping/profiles.js";
import type { Dtype } from "../model/tensor.js";

/** The Megatron-side flags shared by hf2mcore, plan (and reshard). */
export function addTargetOptions(cmd: Command, defaults = true): Command {
  const d = <T>(value: T): T | undefined => (defaults ? value : undefined);
  return cmd
    .option("--tp <n>", "tensor parallel size", positiveInt("--tp"), d(1))
    .option("--pp <n>", "pipeline parallel size", positiveInt("--pp"), d(1))
    .option("--ep <n>", "expert parallel size", positiveInt("--ep"), d(1))
    .option("--etp <n>", "expert tensor parallel size (must equal --tp for legacy checkpoints)", positiveInt("--etp"))
    .option("--vpp <n>", "virtual pipeline chunks per pipeline rank (files hold model0..modelN)", positiveInt("--vpp"), d(1))
    .option("--pp-first-layers <n>", "uneven pipeline: layers on the first stage", positiveInt("--pp-first-layers"))
    .option("--pp-last-layers <n>", "uneven pipeline: layers on the last stage", positiveInt("--pp-last-layers"))
    .addOption(new Option("--spec <spec>", "layer spec: te (Transformer Engine) or local").argParser(layerSpec).default(d("te")))
    .addOption(
      new Option("--experts <impl>", "expert implementation: sequential, te-grouped (TEGroupedMLP) or grouped (legacy GroupedMLP)")
        .argParser(expertImpl)
        .default(d("sequential")),
    )
    .option("--make-vocab-size-divisible-by <n>", "pad the vocab to a multiple of this x TP", positiveInt("--make-vocab-size-divisible-by"), d(128))
    .addOption(new Option("--dtype <dtype>", "output dtype: keep, bf16, fp16, fp32").argParser(outputDtype).default(d("keep")))
    .addOption(new Option("--iteration <n>", 'checkpoint iteration: "release" or a number >= 1').argParser(iteration).default(d("release")));
}

export interface RawTargetFlags {
  tp?: number;
  pp?: number;
  ep?: number;
  etp?: number;
  vpp?: number;
  ppFirstLayers?: number;
  ppLastLayers?: number;
  spec?: LayerSpec;
  experts?: ExpertImpl;
  makeVocabSizeDivisibleBy?: number;
  dtype?: Dtype | "keep";
  iteration?: number | "release";
}

export function targetFrom(flags: RawTargetFlags): TargetOptions {
  const tp = flags.tp ?? 1;
  if (flags.etp !== undefined && flags.etp !== tp) {
    throw new UsageError(
      `--etp ${flags.etp} differs from --tp ${tp}: a legacy Megatron checkpoint names its files by the dense TP rank only, ` +
        "so expert shards of ETP != TP would overwrite one another (megatron-layout 1.4); only --etp equal to --tp is supported",
    );
  }
  return {
    layout: {
      tp,
      pp: flags.pp ?? 1,
      ep: flags.ep ?? 1,
      etp: flags.etp ?? tp,
      vpp: flags.vpp ?? 1,
      ppFirstLayers: flags.ppFirstLayers,
      ppLastLayers: flags.ppLastLayers,
      makeVocabDivisibleBy: flags.makeVocabSizeDivisibleBy ?? 128,
    },
    spec: flags.spec ?? "te",
    experts: flags.experts ?? "sequential",
    dtype: flags.dtype === "keep" ? undefined : flags.dtype,
    iteration: flags.iteration ?? "release",
  };
}
