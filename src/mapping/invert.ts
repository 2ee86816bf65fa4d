import { area, intersect, invertSegment, mapSrcToDst, viewOf, type MatrixView, type Rect, type Segment } from "./rect.js";
import type { ConversionPlan } from "./plan.js";
import type { RankCoord } from "../model/parallel-layout.js";
import type { Dtype, TensorSpec } from "../model/tensor.js";

/** The id of a tensor in a rank file: rank, model chunk key, local name. */
export function rankTensorId(rank: RankCoord, modelKey: string, name: string): string {
  return `t${rank.tp}p${rank.pp}e${rank.ep}|${modelKey}|${name}`;
}

export function parseRankTensorId(id: string): { rank: RankCoord; modelKey: string; name: string } | undefined {
  const m = /^t([0-9]+)p([0-9]+)e([0-9]+)\|([^|]+)\|(.+)$/.exec(id);
  if (m === null) {
    return undefined;
  }
  return { rank: { tp: Number(m[1]), pp: Number(m[2]), ep: Number(m[3]) }, modelKey: m[4] as string, name: m[5] as string };
}

/** An HF tensor rebuilt from rank tensors: each segment's source is a rankTensorId. */
export interface HfRecipe {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  readonly view: MatrixView;
  readonly segments: readonly Segment[];
}

/**
 * Reads a plan backwards: for every HF tensor, the rank-file rectangles that hold it. Replicas
 * (TP/EP copies of replicated tensors) are read from the first rank that has them; padding rows
 * are never read back. Throws when a tensor is not covered exactly once.
 */
export function invertPlan(plan: ConversionPlan, hfTensors: readonly TensorSpec[], dtypeOf?: (hf: TensorSpec) => Dtype): Map<string, HfRecipe> {
  const pieces = new Map<string, Map<string, Segment>>();
  for (const file of plan.files) {
    for (const model of file.models) {
      for (const entry of model.entries) {
        if (entry.kind !== "tensor") {
          continue;
        }
        const id = rankTensorId(file.rank, model.key, entry.name);
        for (const seg of entry.segments) {
          if (seg.repeat !== undefined) {
            continue;
          }
          const byRect = pieces.get(seg.source) ?? new Map<string, Segment>();
          const key = rectKey(seg.src);
          if (!byRect.has(key)) {
            byRect.set(key, invertSegment(seg, id));
          }
          pieces.set(seg.source, byRect);
        }
      }
    }
  }
  const recipes = new Map<string, HfRecipe>();
  for (const t of hfTensors) {
    const segments = [...(pieces.get(t.name)?.values() ?? [])];
    const view = viewOf(t.shape);
    checkTiling(t.name, view, segments);
    recipes.set(t.name, { name: t.name, dtype: dtypeOf?.(t) ?? t.dtype, shape: t.shape, view, segments });
  }
  return recipes;
}

/**
 * Rewrites a segment that reads an HF tensor so that it reads the rank tensors holding those
 * bytes instead (resharding without an HF copy).
 */
export function composeThrough(seg: Segment, hf: HfRecipe): Segment[] {
  const out: Segment[] = [];
  for (const inv of hf.segments) {
    const overlap = intersect(inv.dst, seg.src);
    if (overlap === undefined) {
      continue;
    }
    const toRank: Segment = { source: inv.source, src: inv.dst, dst: inv.src, transposed: inv.transposed };
    const rankRect = mapSrcToDst(toRank, overlap);
    if (seg.repeat !== undefined) {
      out.push({ source: inv.source, src: rankRect, dst: seg.dst, transposed: inv.transposed, repeat: seg.repeat });
      continue;
    }
    out.push({ source: inv.source, src: rankRect, dst: mapSrcToDst(seg, overlap), transposed: inv.transposed !== seg.transposed });
  }
  return out;
}

function rectKey(r: Rect): string {
  return `${r.row},${r.col},${r.rows},${r.cols}`;
}

function checkTiling(name: string, view: MatrixView, segments: readonly Segment[]): void {
  const covered = segments.reduce((s, seg) => s + area(seg.dst), 0);
  for (let i = 0; i < segments.length; i++) {
    for (let j = i + 1; j < segments.length; j++) {
      const a = segments[i];
      const b = segments[j];
      if (a !== undefined && b !== undefined && intersect(a.dst, b.dst) !== undefined) {
        throw new Error(`internal: HF tensor ${name} is covered twice by the plan`);
      }
    }
  }
  if (covered !== view.rows * view.cols) {
    throw new Error(`internal: HF tensor ${name} is covered ${covered} of ${view.rows * view.cols} elements by the plan`);
  }
}
