import { compareTensor, type ComparePools } from "./compare-tensor.js";
import type { Difference } from "./report.js";
import { runPool } from "../engine/pool.js";
import type { SourceSpace } from "../engine/source-space.js";
import { BandPool } from "../engine/tensor-stream.js";
import { FileSource } from "../formats/io/file-source.js";
import { readTorchCheckpoint } from "../formats/torch/checkpoint-reader.js";
import { PyDict, TensorRef } from "../formats/torch/pickle/values.js";
import { rankDirName, RANK_FILE } from "../megatron/checkpoint-layout.js";
import { rankFileIn, type CheckpointFolder } from "../megatron/checkpoint-folder.js";
import { modelChunks } from "../megatron/detect.js";
import type { ConversionPlan, PlannedModel, RankFilePlan } from "../mapping/plan.js";

export interface ExactCounts {
  files: number;
  tensors: number;
  bytes: number;
}

/**
 * Checks a checkpoint folder against a plan: the rank-folder set, every file's key set, every
 * tensor's dtype and shape, and every byte of every tensor (replicas and vocab padding included)
 * against the bytes the plan derives from `space`.
 */
export async function checkCheckpoint(
  plan: ConversionPlan,
  folder: CheckpointFolder,
  space: SourceSpace,
  jobs: number,
): Promise<{ differences: Difference[]; counts: ExactCounts }> {
  const differences: Difference[] = [];
  const expected = new Set(plan.files.map((f) => rankDirName(f.rank, plan.layout)));
  for (const dir of folder.rankDirs.filter((d) => !expected.has(d))) {
    differences.push({ file: dir, key: "", hfTensors: [], problem: "unexpected rank folder for this layout" });
  }
  const counts: ExactCounts = { files: 0, tensors: 0, bytes: 0 };
  await runPool(plan.files, jobs, async (file) => {
    const dir = rankDirName(file.rank, plan.layout);
    if (!folder.rankDirs.includes(dir)) {
      differences.push({ file: dir, key: "", hfTensors: [], problem: "missing rank folder" });
      return;
    }
    await checkRankFile(rankFileIn(folder, dir), `${dir}/${RANK_FILE}`, file, space, differences, counts);
  });
  differences.sort((a, b) => a.file.localeCompare(b.file) || a.key.localeCompare(b.key));
  return { differences, counts };
}

async function checkRankFile(
  path: string,
  label: string,
  plan: RankFilePlan,
  space: SourceSpace,
  differences: Difference[],
  counts: { files: number; tensors: number; bytes: number },
): Promise<void> {
  const source = await FileSource.open(path);
  try {
    const { root } = await readTorchCheckpoint(source);
    counts.files++;
    if (!(root instanceof PyDict)) {
      differences.push({ file: label, key: "", hfTensors: [], problem: "the file does not hold a dict" });
      return;
    }
    const chunks = new Map(modelChunks(root));
    const pools: ComparePools = { expected: new BandPool(), stored: [] };
    for (const model of plan.models) {
      const actual = chunks.get(model.key);
      if (actual === undefined) {
        differences.push({ file: label, key: model.key, hfTensors: [], problem: `no "${model.key}" entry` });
        continue;
      }
      await checkModel(source, label, model, actual, space, pools, differences, counts);
    }
  } finally {
    await source.close();
  }
}

async function checkModel(
  source: FileSource,
  label: string,
  model: PlannedModel,
  actual: PyDict,
  space: SourceSpace,
  pools: ComparePools,
  differences: Difference[],
  counts: { tensors: number; bytes: number },
): Promise<void> {
  const planned = new Set(model.entries.map((e) => e.name));
  for (const key of actual.keys()) {
    if (typeof key === "string" && !planned.has(key)) {
      differences.push({ file: label, key: `${model.key}/${key}`, hfTensors: [], problem: "unexpected key" });
    }
  }
  for (const entry of model.entries) {
    const value = actual.get(entry.name);
    const key = `${model.key}/${entry.name}`;
    const hfTensors = entry.kind === "tensor" ? [...new Set(entry.segments.map((s) => s.source))] : [];
    if (value === undefined && !actual.keys().includes(entry.name)) {
      differences.push({ file: label, key, hfTensors, problem: "missing key" });
      continue;
    }
    if (entry.kind === "extra-state") {
      continue;
    }
    if (!(value instanceof TensorRef)) {
      differences.push({ file: label, key, hfTensors, problem: "expected a tensor" });
      continue;
    }
    const problem = await compareTensor(source, value, entry, space, pools);
    counts.tensors++;
    counts.bytes += problem.bytes;
    if (problem.message !== undefined) {
      differences.push({ file: label, key, hfTensors, problem: problem.message });
    }
  }
}
