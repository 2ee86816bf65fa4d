import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { buildMcoreDims } from "./mcore-dims.js";
import { loadMegatronProfiles, loadTables, selectTable } from "./tables.js";
import { MANIFEST_FILE } from "./manifest.js";
import { FileSource } from "../formats/io/file-source.js";
import { readTorchCheckpoint } from "../formats/torch/checkpoint-reader.js";
import { SeenPickles } from "../formats/torch/seen-pickles.js";
import { PyDict, TensorRef } from "../formats/torch/pickle/values.js";
import { rankDirName, RANK_FILE } from "../megatron/checkpoint-layout.js";
import { openCheckpointFolder, type CheckpointFolder } from "../megatron/checkpoint-folder.js";
import { detectTarget, modelChunks, type DetectedTarget } from "../megatron/detect.js";
import { MegatronCheckpointError } from "../megatron/errors.js";
import { MegatronSourceSpace, type RankTensor } from "../megatron/source-space.js";
import { rankTensorId } from "../mapping/invert.js";
import { planConversion, type ConversionPlan } from "../mapping/plan.js";
import { resolveTable } from "../mapping/resolve.js";
import { hfTensorsOf } from "../mapping/synthesize.js";
import type { MappingTable } from "../mapping/table.js";
import type { ExpertImpl, LayerSpec } from "../mapping/profiles.js";
import type { ModelDims } from "../model/model-dims.js";
import { validateLayout, type ParallelLayout } from "../model/parallel-layout.js";
import { formatShape, sameShape, type TensorSpec } from "../model/tensor.js";

export interface McoreInputOptions {
  readonly iteration?: number | "release" | undefined;
  /** HF config.json (or its folder) for the true vocab size, architecture and HF config fields. */
  readonly hfConfig?: string | undefined;
  readonly vocabSize?: number | undefined;
  /** The mapping table by name (`--model qwen3-moe`), for a checkpoint with no manifest and no HF config. */
  readonly model?: string | undefined;
  readonly layout?: Partial<ParallelLayout> | undefined;
  readonly spec?: LayerSpec | undefined;
  readonly experts?: ExpertImpl | undefined;
}

/** A Megatron checkpoint opened and checked against the plan its args imply. */
export interface McoreModel {
  readonly folder: CheckpointFolder;
  readonly detected: DetectedTarget;
  readonly table: MappingTable;
  readonly dims: ModelDims;
  readonly hfConfig: Record<string, unknown> | undefined;
  readonly hfTensors: readonly TensorSpec[];
  readonly plan: ConversionPlan;
  readonly space: MegatronSourceSpace;
  close(): Promise<void>;
}

export async function openMcoreModel(dir: string, options: McoreInputOptions): Promise<McoreModel> {
  const folder = await openCheckpointFolder(dir, options.iteration);
  // the rank files' trees are let go of once checked (the stored tensors' refs are kept, in the
  // space), and only their files stay open: 16 trees of a TP4 EP4 checkpoint, each with its own
  // args and extra states, no longer live through the conversion
  const opened = new Map<string, { source: FileSource; root: PyDict }>();
  const sources: FileSource[] = [];
  const closeAll = async () => {
    await Promise.all(sources.map((source) => source.close()));
  };
  const seen = new SeenPickles();
  try {
    for (const rankDir of folder.rankDirs) {
      const path = join(folder.iterationDir, rankDir, RANK_FILE);
      const source = await FileSource.open(path);
      sources.push(source);
      opened.set(rankDir, { source, root: asDict((await readTorchCheckpoint(source, { seen })).root, path) });
    }
    const [firstDir, first] = [...opened.entries()][0] ?? [];
    if (first === undefined || firstDir === undefined) {
      throw new MegatronCheckpointError(folder.iterationDir, ["no rank files"]);
    }
    const detected = applyOverrides(detectTarget(first.root, join(folder.iterationDir, firstDir, RANK_FILE)), options);
    const manifest = await readJson(join(dir, MANIFEST_FILE));
    const hfConfig = options.hfConfig === undefined ? undefined : await readHfConfig(options.hfConfig);
    const table = await chooseTable(options.model, hfConfig, manifest, options.hfConfig ?? dir);
    const dims = buildMcoreDims(detected, hfConfig, table, manifest, options.vocabSize, folder.iterationDir);
    const dtype = detected.dtype ?? dims.dtype;
    const hfTensors = hfTensorsOf(table, dims, dtype);
    const layout = validateLayout(detected.layout, dims);
    const bindings = resolveTable(table, hfTensors, dims, dir);
    const plan = planConversion(bindings, dims, { layout, spec: detected.spec, experts: detected.experts }, await loadMegatronProfiles());
    const space = new MegatronSourceSpace(checkAgainstPlan(plan, opened, folder));
    return { folder, detected, table, dims, hfConfig, hfTensors, plan, space, close: closeAll };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

function applyOverrides(d: DetectedTarget, options: McoreInputOptions): DetectedTarget {
  return {
    ...d,
    layout: { ...d.layout, ...Object.fromEntries(Object.entries(options.layout ?? {}).filter(([, v]) => v !== undefined)) },
    spec: options.spec ?? d.spec,
    experts: options.experts ?? d.experts,
  };
}

/** Every planned rank file, key, shape and dtype must be there; every stored tensor must be planned. */
function checkAgainstPlan(
  plan: ConversionPlan,
  opened: ReadonlyMap<string, { source: FileSource; root: PyDict }>,
  folder: CheckpointFolder,
): Map<string, RankTensor> {
  const problems: string[] = [];
  const tensors = new Map<string, RankTensor>();
  const expected = new Set(plan.files.map((f) => rankDirName(f.rank, plan.layout)));
  for (const dir of opened.keys()) {
    if (!expected.has(dir)) {
      problems.push(`${dir}: rank folder not expected for TP=${plan.layout.tp} PP=${plan.layout.pp} EP=${plan.layout.ep} (args and folders disagree)`);
    }
  }
  for (const file of plan.files) {
    const dir = rankDirName(file.rank, plan.layout);
    const rank = opened.get(dir);
    if (rank === undefined) {
      problems.push(`${dir}: missing rank folder (expected ${plan.files.length} for this layout)`);
      continue;
    }
    const chunks = new Map(modelChunks(rank.root));
    for (const model of file.models) {
      const stored = chunks.get(model.key);
      if (stored === undefined) {
        problems.push(`${dir}/${RANK_FILE}: no "${model.key}" entry`);
        continue;
      }
      const planned = new Set(model.entries.map((e) => e.name));
      for (const key of stored.keys()) {
        if (typeof key === "string" && !key.endsWith("_extra_state") && !planned.has(key)) {
          problems.push(`${dir}/${RANK_FILE}: unexpected tensor ${model.key}/${key}`);
        }
      }
      for (const entry of model.entries) {
        if (entry.kind !== "tensor") {
          continue;
        }
        const value = stored.get(entry.name);
        if (!(value instanceof TensorRef)) {
          problems.push(`${dir}/${RANK_FILE}: missing tensor ${model.key}/${entry.name} ${formatShape(entry.shape)}`);
        } else if (!sameShape(value.shape, entry.shape)) {
          problems.push(`${dir}/${RANK_FILE}: ${model.key}/${entry.name} has shape ${formatShape(value.shape)}; expected ${formatShape(entry.shape)}`);
        } else {
          tensors.set(rankTensorId(file.rank, model.key, entry.name), { ref: value, source: rank.source, view: entry.view });
        }
      }
    }
  }
  if (problems.length > 0) {
    throw new MegatronCheckpointError(folder.iterationDir, problems.sort());
  }
  return tensors;
}

/** --model, else the HF config's architecture, else the manifest megatron-convert wrote. */
async function chooseTable(
  model: string | undefined,
  hfConfig: Record<string, unknown> | undefined,
  manifest: Record<string, unknown> | undefined,
  where: string,
): Promise<MappingTable> {
  const tables = await loadTables();
  const names = tables.map((t) => t.name).join(", ");
  if (model !== undefined) {
    const named = tables.find((t) => t.name === model);
    if (named === undefined) {
      throw new MegatronCheckpointError(where, [`--model ${model}: no such mapping table; known: ${names}`]);
    }
    const configured = hfConfig === undefined ? named : selectTable(tables, hfConfig, where);
    if (configured !== named) {
      throw new MegatronCheckpointError(where, [`--model ${model} disagrees with the HF config's architectures (${configured.name})`]);
    }
    return named;
  }
  if (hfConfig !== undefined) {
    return selectTable(tables, hfConfig, where);
  }
  const name = (manifest?.["source"] as Record<string, unknown> | undefined)?.["table"];
  const byName = tables.find((t) => t.name === name) ?? (tables.length === 1 ? tables[0] : undefined);
  if (byName === undefined) {
    throw new MegatronCheckpointError(where, [
      `cannot tell which model this is (no megatron-convert.json beside it): pass --model <${names.replaceAll(", ", "|")}> or --hf-config with the model's config.json`,
    ]);
  }
  return byName;
}

async function readHfConfig(path: string): Promise<Record<string, unknown>> {
  const file = path.endsWith(".json") ? path : join(path, "config.json");
  const json = await readJson(file);
  if (json === undefined) {
    throw new MegatronCheckpointError(file, ["cannot read this HF config.json"]);
  }
  return json;
}

async function readJson(file: string): Promise<Record<string, unknown> | undefined> {
  try {
    const json: unknown = JSON.parse(await readFile(file, "utf8"));
    return typeof json === "object" && json !== null && !Array.isArray(json) ? (json as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function asDict(root: unknown, path: string): PyDict {
  if (!(root instanceof PyDict)) {
    throw new MegatronCheckpointError(path, ["the file does not hold a dict (not a Megatron model_optim_rng.pt)"]);
  }
  return root;
}
