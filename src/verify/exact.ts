import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { compareTensor } from "./compare-tensor.js";
import { MAX_REPORTED_DIFFERENCES, type Difference, type ExactReport } from "./report.js";
import { buildPlan, type TargetOptions } from "../commands/build-plan.js";
import { openHfModel } from "../commands/hf-input.js";
import { MANIFEST_FILE } from "../commands/manifest.js";
import { runPool } from "../engine/pool.js";
import { FileSource } from "../formats/io/file-source.js";
import { readTorchCheckpoint } from "../formats/torch/checkpoint-reader.js";
import { PyDict, TensorRef } from "../formats/torch/pickle/values.js";
import { rankDirName, RANK_FILE } from "../megatron/checkpoint-layout.js";
import { openCheckpointFolder, rankFileIn } from "../megatron/checkpoint-folder.js";
import { detectTarget, modelChunks } from "../megatron/detect.js";
import type { PlannedModel, RankFilePlan } from "../mapping/plan.js";
import type { SourceSpace } from "../engine/source-space.js";

export interface VerifyExactOptions {
  readonly hf: string;
  readonly mcore: string;
  readonly iteration?: number | "release";
  /** Overrides what the manifest or the rank files' args say. */
  readonly target?: Partial<TargetOptions>;
  readonly jobs: number;
}

/**
 * Checks a Megatron checkpoint against its HF source: the rank-folder set, every file's key set,
 * every tensor's dtype and shape, and every byte of every tensor (replicas and vocab padding
 * included) against the bytes the mapping derives from the HF tensors.
 */
export async function verifyExact(options: VerifyExactOptions): Promise<ExactReport> {
  const started = performance.now();
  const model = await openHfModel(options.hf);
  try {
    const folder = await openCheckpointFolder(options.mcore, options.iteration);
    const target = await resolveTarget(options, folder.iterationDir, folder.rankDirs[0] ?? "", folder.iteration);
    const built = await buildPlan(model, target);
    const differences: Difference[] = [];
    const expected = new Set(built.plan.files.map((f) => rankDirName(f.rank, built.plan.layout)));
    for (const dir of folder.rankDirs.filter((d) => !expected.has(d))) {
      differences.push({ file: dir, key: "", hfTensors: [], problem: "unexpected rank folder for this layout" });
    }
    const counts = { files: 0, tensors: 0, bytes: 0 };
    await runPool(built.plan.files, options.jobs, async (file) => {
      const dir = rankDirName(file.rank, built.plan.layout);
      if (!folder.rankDirs.includes(dir)) {
        differences.push({ file: dir, key: "", hfTensors: [], problem: "missing rank folder" });
        return;
      }
      await checkRankFile(rankFileIn(folder, dir), `${dir}/${RANK_FILE}`, file, model.space, differences, counts);
    });
    differences.sort((a, b) => a.file.localeCompare(b.file) || a.key.localeCompare(b.key));
    return {
      schemaVersion: 1,
      mode: "exact",
      ok: differences.length === 0,
      hf: options.hf,
      mcore: options.mcore,
      layout: { ...built.plan.layout, spec: built.plan.spec, experts: built.plan.experts, dtype: built.plan.dtype ?? "keep" },
      filesChecked: counts.files,
      tensorsChecked: counts.tensors,
      bytesCompared: counts.bytes,
      differences: differences.slice(0, MAX_REPORTED_DIFFERENCES),
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await model.close();
  }
}

async function resolveTarget(
  options: VerifyExactOptions,
  iterationDir: string,
  firstRankDir: string,
  iteration: number | "release",
): Promise<TargetOptions> {
  const manifest = await readFile(join(options.mcore, MANIFEST_FILE), "utf8").then((t) => JSON.parse(t) as Record<string, unknown>).catch(() => undefined);
  let detected: Omit<TargetOptions, "iteration">;
  if (manifest !== undefined && typeof manifest["layout"] === "object") {
    detected = {
      layout: manifest["layout"] as TargetOptions["layout"],
      spec: manifest["spec"] as TargetOptions["spec"],
      experts: manifest["experts"] as TargetOptions["experts"],
      dtype: manifest["dtype"] === "keep" ? undefined : (manifest["dtype"] as TargetOptions["dtype"]),
    };
  } else {
    const path = join(iterationDir, firstRankDir, RANK_FILE);
    const source = await FileSource.open(path);
    try {
      const d = detectTarget((await readTorchCheckpoint(source)).root, path);
      detected = { layout: d.layout, spec: d.spec, experts: d.experts, dtype: d.dtype };
    } finally {
      await source.close();
    }
  }
  return { ...detected, iteration, ...stripUndefined(options.target ?? {}) };
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
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
    for (const model of plan.models) {
      const actual = chunks.get(model.key);
      if (actual === undefined) {
        differences.push({ file: label, key: model.key, hfTensors: [], problem: `no "${model.key}" entry` });
        continue;
      }
      await checkModel(source, label, model, actual, space, differences, counts);
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
    const problem = await compareTensor(source, value, entry, space);
    counts.tensors++;
    counts.bytes += problem.bytes;
    if (problem.message !== undefined) {
      differences.push({ file: label, key, hfTensors, problem: problem.message });
    }
  }
}
