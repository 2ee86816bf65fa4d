import { compareTensor, newComparePools, type ComparePools } from "./compare-tensor.js";
import type { Difference } from "./report.js";
import { runPool } from "../engine/pool.js";
import type { SourceSpace } from "../engine/source-space.js";
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

/** One rank file to check: where it is, how it is named in the report, and what it must hold. */
export interface RankFileCheck {
  readonly path: string;
  readonly label: string;
  readonly plan: RankFilePlan;
}

export interface RankFileResult {
  readonly differences: Difference[];
  readonly counts: ExactCounts;
}

/** Checks rank files one at a time, in this thread or in worker threads (exact-threads.ts). */
export interface RankFileChecker {
  check(job: RankFileCheck): Promise<RankFileResult>;
  close(): Promise<void>;
}

export function inProcessChecker(space: SourceSpace): RankFileChecker {
  const idle: ComparePools[] = [];
  return {
    check: async (job) => {
      const pools = idle.pop() ?? newComparePools();
      try {
        return await checkRankFile(job, space, pools);
      } finally {
        idle.push(pools);
      }
    },
    close: async () => undefined,
  };
}

/**
 * Checks a checkpoint folder against a plan: the rank-folder set, every file's key set, every
 * tensor's dtype and shape, and every byte of every tensor (replicas and vocab padding included)
 * against the bytes the plan derives from the HF tensors. `checker` runs up to `jobs` files at once.
 */
export async function checkCheckpoint(
  plan: ConversionPlan,
  folder: CheckpointFolder,
  checker: RankFileChecker,
  jobs: number,
): Promise<{ differences: Difference[]; counts: ExactCounts }> {
  const differences: Difference[] = [];
  const expected = new Set(plan.files.map((f) => rankDirName(f.rank, plan.layout)));
  for (const dir of folder.rankDirs.filter((d) => !expected.has(d))) {
    differences.push({ file: dir, key: "", hfTensors: [], problem: "unexpected rank folder for this layout" });
  }
  const jobsToRun: RankFileCheck[] = [];
  for (const file of plan.files) {
    const dir = rankDirName(file.rank, plan.layout);
    if (folder.rankDirs.includes(dir)) {
      jobsToRun.push({ path: rankFileIn(folder, dir), label: `${dir}/${RANK_FILE}`, plan: file });
    } else {
      differences.push({ file: dir, key: "", hfTensors: [], problem: "missing rank folder" });
    }
  }
  const counts: ExactCounts = { files: 0, tensors: 0, bytes: 0 };
  await runPool(jobsToRun, jobs, async (job) => {
    const result = await checker.check(job);
    differences.push(...result.differences);
    counts.files += result.counts.files;
    counts.tensors += result.counts.tensors;
    counts.bytes += result.counts.bytes;
  });
  differences.sort((a, b) => a.file.localeCompare(b.file) || a.key.localeCompare(b.key));
  return { differences, counts };
}

/** Checks one rank file against its plan, with `pools` (not shared with a check running at the same time). */
export async function checkRankFile(job: RankFileCheck, space: SourceSpace, pools: ComparePools = newComparePools()): Promise<RankFileResult> {
  const { path, label, plan } = job;
  const differences: Difference[] = [];
  const counts: ExactCounts = { files: 0, tensors: 0, bytes: 0 };
  const source = await FileSource.open(path);
  try {
    const { root } = await readTorchCheckpoint(source);
    counts.files++;
    if (!(root instanceof PyDict)) {
      differences.push({ file: label, key: "", hfTensors: [], problem: "the file does not hold a dict" });
      return { differences, counts };
    }
    const chunks = new Map(modelChunks(root));
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
  return { differences, counts };
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
