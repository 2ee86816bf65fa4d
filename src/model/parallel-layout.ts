import { LayoutError } from "./errors.js";
import type { ModelDims } from "./model-dims.js";

/** How a model is cut over GPUs. `vpp` = 1 means no virtual pipeline. */
export interface ParallelLayout {
  readonly tp: number;
  readonly pp: number;
  readonly ep: number;
  /** Expert tensor parallel size; only ETP == TP is written by legacy checkpoints. */
  readonly etp: number;
  readonly vpp: number;
  /** Uneven pipeline: layers of the first / last stage (Megatron --decoder-first/last-pipeline-num-layers). */
  readonly ppFirstLayers?: number | undefined;
  readonly ppLastLayers?: number | undefined;
  readonly makeVocabDivisibleBy: number;
}

export interface RankCoord {
  readonly tp: number;
  readonly pp: number;
  readonly ep: number;
}

/** One model chunk: the global layers it holds, in order (local index = position). */
export interface StageChunk {
  readonly pp: number;
  readonly vpp: number;
  readonly layers: readonly number[];
}

export function paddedVocab(vocab: number, layout: Pick<ParallelLayout, "tp" | "makeVocabDivisibleBy">): number {
  const multiple = layout.makeVocabDivisibleBy * layout.tp;
  return Math.ceil(vocab / multiple) * multiple;
}

export function ranksOf(layout: ParallelLayout): RankCoord[] {
  const ranks: RankCoord[] = [];
  for (let pp = 0; pp < layout.pp; pp++) {
    for (let ep = 0; ep < layout.ep; ep++) {
      for (let tp = 0; tp < layout.tp; tp++) {
        ranks.push({ tp, pp, ep });
      }
    }
  }
  return ranks;
}

/** Layers per pipeline stage, following Megatron's get_num_layers_to_build. */
export function layersPerStage(layout: ParallelLayout, layers: number): number[] {
  const { pp, ppFirstLayers: first, ppLastLayers: last } = layout;
  if (first === undefined && last === undefined) {
    return Array.from({ length: pp }, () => layers / pp);
  }
  const middleStages = pp - (first === undefined ? 0 : 1) - (last === undefined ? 0 : 1);
  const rest = layers - (first ?? 0) - (last ?? 0);
  const perMiddle = middleStages === 0 ? 0 : rest / middleStages;
  return Array.from({ length: pp }, (_, stage) => {
    if (stage === 0 && first !== undefined) {
      return first;
    }
    if (stage === pp - 1 && last !== undefined) {
      return last;
    }
    return perMiddle;
  });
}

/** The model chunks of every pipeline rank: chunk v of rank p per megatron-layout 3.1. */
export function stageChunks(layout: ParallelLayout, layers: number): StageChunk[] {
  const chunks: StageChunk[] = [];
  if (layout.vpp > 1) {
    const perChunk = layers / (layout.pp * layout.vpp);
    for (let p = 0; p < layout.pp; p++) {
      for (let v = 0; v < layout.vpp; v++) {
        const start = v * (layers / layout.vpp) + p * perChunk;
        chunks.push({ pp: p, vpp: v, layers: range(start, perChunk) });
      }
    }
    return chunks;
  }
  let start = 0;
  layersPerStage(layout, layers).forEach((count, p) => {
    chunks.push({ pp: p, vpp: 0, layers: range(start, count) });
    start += count;
  });
  return chunks;
}

function range(start: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => start + i);
}

/** Every constraint Megatron puts on the layout, checked before anything is written. */
export function validateLayout(layout: ParallelLayout, dims: ModelDims): ParallelLayout {
  const problems: string[] = [];
  const positive = (name: string, value: number): void => {
    if (!Number.isInteger(value) || value < 1) {
      problems.push(`${name}=${value} must be a positive integer`);
    }
  };
  positive("TP", layout.tp);
  positive("PP", layout.pp);
  positive("EP", layout.ep);
  positive("ETP", layout.etp);
  positive("VPP", layout.vpp);
  positive("make-vocab-size-divisible-by", layout.makeVocabDivisibleBy);
  if (problems.length > 0) {
    throw new LayoutError(problems);
  }
  const divides = (what: string, n: number, whatTotal: string, total: number): void => {
    if (total % n !== 0) {
      problems.push(`${what}=${n} does not divide ${whatTotal}=${total}`);
    }
  };
  divides("TP", layout.tp, "num_attention_heads", dims.heads);
  divides("TP", layout.tp, "num_key_value_heads (query groups)", dims.kvGroups);
  if (layout.etp !== layout.tp) {
    problems.push(
      `ETP=${layout.etp} differs from TP=${layout.tp}: legacy checkpoints name files by the dense TP rank only, ` +
        "so ETP != TP cannot be written without losing shards (megatron-layout 1.4); use ETP = TP",
    );
  }
  divides(dims.experts > 0 ? "ETP" : "TP", layout.etp, dims.experts > 0 ? "expert ffn size" : "ffn size", dims.ffn);
  if (dims.sharedFfn > 0) {
    divides("TP", layout.tp, "shared expert ffn size", dims.sharedFfn);
  }
  if (dims.experts > 0) {
    divides("EP", layout.ep, "num_experts", dims.experts);
  } else if (layout.ep !== 1) {
    problems.push(`EP=${layout.ep} needs a mixture-of-experts model; this model is dense`);
  }
  validatePipeline(layout, dims.layers, problems);
  if (problems.length > 0) {
    throw new LayoutError(problems);
  }
  return layout;
}

function validatePipeline(layout: ParallelLayout, layers: number, problems: string[]): void {
  const uneven = layout.ppFirstLayers !== undefined || layout.ppLastLayers !== undefined;
  if (layout.vpp > 1) {
    if (layout.pp < 2) {
      problems.push(`VPP=${layout.vpp} needs PP >= 2 (a virtual pipeline interleaves pipeline stages)`);
    }
    if (uneven) {
      problems.push("VPP together with an uneven pipeline (--pp-first-layers/--pp-last-layers) is not supported");
    }
    if (layers % (layout.pp * layout.vpp) !== 0) {
      problems.push(`PP x VPP = ${layout.pp * layout.vpp} does not divide num_layers=${layers}`);
    }
    return;
  }
  if (!uneven) {
    if (layers % layout.pp !== 0) {
      problems.push(
        `PP=${layout.pp} does not divide num_layers=${layers}; use --pp-first-layers/--pp-last-layers for an uneven split`,
      );
    }
    return;
  }
  if (layout.pp < 2) {
    problems.push("--pp-first-layers/--pp-last-layers need PP >= 2");
    return;
  }
  for (const [flag, value] of [
    ["--pp-first-layers", layout.ppFirstLayers],
    ["--pp-last-layers", layout.ppLastLayers],
  ] as const) {
    if (value !== undefined && (!Number.isInteger(value) || value < 1)) {
      problems.push(`${flag}=${value} must be a positive integer`);
    }
  }
  const counts = layersPerStage(layout, layers);
  const total = counts.reduce((a, b) => a + b, 0);
  if (counts.some((c) => !Number.isInteger(c) || c < 1) || total !== layers) {
    problems.push(
      `the uneven pipeline split does not add up: stages would hold [${counts.map((c) => (Number.isInteger(c) ? c : c.toFixed(2))).join(", ")}] ` +
        `layers but num_layers=${layers} (the middle stages must split the rest evenly)`,
    );
  }
}
