import { gateUp } from "./transforms/gate-up.js";
import { qkv } from "./transforms/qkv.js";
import { column, replicated, row, vocab, type ShardPiece } from "./transforms/tp-split.js";
import { assembleEntries, layOutNames, type NameLayout } from "./profile-apply.js";
import { viewOf, type MatrixView, type Segment } from "./rect.js";
import type { Binding } from "./resolve.js";
import type { ExpertImpl, LayerSpec, MegatronProfiles } from "./profiles.js";
import type { ModelDims } from "../model/model-dims.js";
import { paddedVocab, ranksOf, stageChunks, type ParallelLayout, type RankCoord, type StageChunk } from "../model/parallel-layout.js";
import { byteLengthOf, type Dtype } from "../model/tensor.js";

/** One tensor of a rank file: local name, what it is, and where each rectangle comes from. */
export interface PlannedTensor {
  readonly kind: "tensor";
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  /** The matrix its segments address (differs from the shape only for packed GroupedMLP weights). */
  readonly view: MatrixView;
  readonly segments: readonly Segment[];
}

export interface PlannedExtraState {
  readonly kind: "extra-state";
  readonly name: string;
}

export type PlannedEntry = PlannedTensor | PlannedExtraState;

/** `model`, or `model0..N` with a virtual pipeline. */
export interface PlannedModel {
  readonly key: string;
  readonly entries: readonly PlannedEntry[];
}

export interface RankFilePlan {
  readonly rank: RankCoord;
  readonly models: readonly PlannedModel[];
}

export interface PlanOptions {
  readonly layout: ParallelLayout;
  readonly spec: LayerSpec;
  readonly experts: ExpertImpl;
  /** Output dtype; undefined keeps each source tensor's dtype. */
  readonly dtype?: Dtype | undefined;
}

export interface ConversionPlan extends PlanOptions {
  readonly dims: ModelDims;
  readonly paddedVocab: number;
  readonly files: readonly RankFilePlan[];
  readonly totalBytes: number;
}

interface Placed {
  readonly binding: Binding;
  readonly chunk: StageChunk;
  readonly epRank?: number;
  /** Its name in the chunk (local layer and expert numbers), before the spec's renames. */
  readonly localName: string;
}

/** Bindings x dims x layout -> every rank file's entries, in state-dict order. Pure. */
export function planConversion(
  bindings: readonly Binding[],
  dims: ModelDims,
  options: PlanOptions,
  profiles: MegatronProfiles,
): ConversionPlan {
  const { layout } = options;
  const vp = paddedVocab(dims.vocab, layout);
  const chunks = stageChunks(layout, dims.layers);
  const placed = bindings.map((b) => place(b, chunks, dims, layout));
  const tensors = new PlacedTensors(dims, options, vp);
  const names = new NameLayouts(options, profiles);
  const files: RankFilePlan[] = [];
  let totalBytes = 0;
  for (const rank of ranksOf(layout)) {
    const models = chunks
      .filter((c) => c.pp === rank.pp)
      .map((chunk) => {
        const entries = modelEntries(placed, chunk, rank, tensors, names);
        return { key: layout.vpp > 1 ? `model${chunk.vpp}` : "model", entries };
      });
    const file = { rank, models };
    totalBytes += rankFileBytes(file);
    files.push(file);
  }
  return { ...options, dims, paddedVocab: vp, files, totalBytes };
}

/** Tensor bytes of one rank file (`_extra_state` entries hold none). */
export function rankFileBytes(file: RankFilePlan): number {
  let bytes = 0;
  for (const m of file.models) {
    for (const e of m.entries) {
      bytes += e.kind === "tensor" ? byteLengthOf(e) : 0;
    }
  }
  return bytes;
}

function place(binding: Binding, chunks: readonly StageChunk[], dims: ModelDims, layout: ParallelLayout): Placed {
  const { layer, expert } = binding.captures;
  const stage = binding.rule.stage;
  let chunk: StageChunk | undefined;
  if (layer !== undefined) {
    chunk = chunks.find((c) => c.layers.includes(layer));
  } else if (stage === "first") {
    chunk = chunks.find((c) => c.pp === 0 && c.vpp === 0);
  } else {
    chunk = chunks.find((c) => c.pp === layout.pp - 1 && c.vpp === layout.vpp - 1);
  }
  if (chunk === undefined) {
    throw new Error(`internal: no pipeline chunk for ${binding.megatron}`);
  }
  const localLayer = layer === undefined ? undefined : chunk.layers.indexOf(layer);
  if (expert === undefined) {
    return { binding, chunk, localName: renderLocal(binding.rule.megatron.source, { layer: localLayer }) };
  }
  const perRank = dims.experts / layout.ep;
  const localName = renderLocal(binding.rule.megatron.source, { layer: localLayer, expert: expert % perRank });
  return { binding, chunk, localName, epRank: Math.floor(expert / perRank) };
}

function modelEntries(placed: readonly Placed[], chunk: StageChunk, rank: RankCoord, tensors: PlacedTensors, names: NameLayouts): PlannedEntry[] {
  const held: PlannedTensor[] = [];
  const here = placed.filter((p) => p.chunk === chunk && (p.epRank === undefined || p.epRank === rank.ep));
  for (const p of here) {
    if (p.binding.rule.tied && here.some((q) => !q.binding.rule.tied && sharesInput(q.binding, p.binding))) {
      continue;
    }
    held.push(tensors.of(p, rank.tp));
  }
  return assembleEntries(held, names.of(held.map((t) => t.name)));
}

/**
 * Each placed binding's tensor per TP rank, made once: a dense weight's is the same in every EP
 * rank, so those rank files share it (plans are read, never modified).
 */
class PlacedTensors {
  private readonly byPlaced = new Map<Placed, PlannedTensor[]>();

  constructor(
    private readonly dims: ModelDims,
    private readonly options: PlanOptions,
    private readonly vp: number,
  ) {}

  of(p: Placed, tp: number): PlannedTensor {
    let perTp = this.byPlaced.get(p);
    if (perTp === undefined) {
      perTp = [];
      this.byPlaced.set(p, perTp);
    }
    return (perTp[tp] ??= this.make(p, tp));
  }

  private make(p: Placed, tp: number): PlannedTensor {
    const piece = shardOf(p.binding, this.dims, this.options.layout.tp, tp, this.vp);
    const first = p.binding.inputs.values().next().value;
    return {
      kind: "tensor",
      name: p.localName,
      dtype: this.options.dtype ?? first?.dtype ?? this.dims.dtype,
      shape: piece.shape,
      view: viewOf(piece.shape),
      segments: piece.segments,
    };
  }
}

/**
 * The name layouts of one plan (one spec and expert implementation), each made once per distinct
 * list of local names: the rank files of a TP x EP layout hold the same names, so a TP4 EP4 plan
 * lays its names out once, not 16 times (that work was most of planning: sorting thousands of
 * keys by state-dict order, matching every name against the rename rules).
 */
class NameLayouts {
  private readonly byNames = new Map<string, NameLayout>();

  constructor(
    private readonly options: PlanOptions,
    private readonly profiles: MegatronProfiles,
  ) {}

  of(names: readonly string[]): NameLayout {
    const key = names.join("\0"); // no tensor name holds a NUL
    let layout = this.byNames.get(key);
    if (layout === undefined) {
      const { specs, experts } = this.profiles;
      layout = layOutNames(names, specs[this.options.spec], experts[this.options.experts], this.profiles);
      this.byNames.set(key, layout);
    }
    return layout;
  }
}

/** Tied weights are one parameter on a chunk that holds both ends (Megatron allocates no copy there). */
function sharesInput(a: Binding, b: Binding): boolean {
  const names = new Set([...a.inputs.values()].map((t) => t.name));
  return [...b.inputs.values()].some((t) => names.has(t.name));
}

function renderLocal(pattern: string, captures: { layer?: number; expert?: number }): string {
  return pattern.replace("{layer}", String(captures.layer)).replace("{expert}", String(captures.expert));
}

/** The TP rank's piece of one binding; experts use ETP, which equals TP here. */
export function shardOf(binding: Binding, dims: ModelDims, tp: number, rank: number, vp: number): ShardPiece {
  const input = (role: string) => {
    const t = binding.inputs.get(role);
    if (t === undefined) {
      throw new Error(`internal: binding ${binding.megatron} lacks input "${role}"`);
    }
    return t;
  };
  switch (binding.rule.combine) {
    case "qkv":
      return qkv(input("q"), input("k"), input("v"), dims, tp, rank);
    case "gate-up":
      return gateUp(input("gate"), input("up"), tp, rank);
    case undefined:
      break;
  }
  const only = input("");
  switch (binding.rule.tp) {
    case "replicated":
      return replicated(only);
    case "column":
      return column(only, tp, rank);
    case "row":
      return row(only, tp, rank);
    case "vocab":
      return vocab(only, tp, rank, vp);
  }
}
