import { hfSourcesOf, type StoredBytes } from "./byte-checks.js";
import type { Difference } from "./report.js";
import { FileSource } from "../formats/io/file-source.js";
import { readTorchCheckpoint } from "../formats/torch/checkpoint-reader.js";
import { PyDict, TensorRef } from "../formats/torch/pickle/values.js";
import type { SeenPickles } from "../formats/torch/seen-pickles.js";
import { modelChunks } from "../megatron/detect.js";
import type { PlannedEntry, PlannedModel, RankFilePlan } from "../mapping/plan.js";
import { byteLengthOf, formatShape, sameShape } from "../model/tensor.js";

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

export interface HeaderCheck {
  readonly differences: Difference[];
  readonly counts: ExactCounts;
  /** The tensors whose bytes are to be checked (their dtype and shape matched); their bytes count as compared. */
  readonly stored: StoredBytes[];
}

/**
 * Reads one rank file's header and checks what it holds against its plan: a dict, the model
 * entries, their keys, each tensor's dtype and shape. No tensor bytes are read. `seen`: the
 * pickles of the rank files read before (rank files often hold the same one).
 */
export async function checkHeader(job: RankFileCheck, seen: SeenPickles): Promise<HeaderCheck> {
  const { path, label, plan } = job;
  const result: HeaderCheck = { differences: [], counts: { files: 0, tensors: 0, bytes: 0 }, stored: [] };
  const source = await FileSource.open(path);
  try {
    const { root } = await readTorchCheckpoint(source, { seen });
    result.counts.files++;
    if (!(root instanceof PyDict)) {
      result.differences.push({ file: label, key: "", hfTensors: [], problem: "the file does not hold a dict" });
      return result;
    }
    const chunks = new Map(modelChunks(root));
    for (const model of plan.models) {
      const actual = chunks.get(model.key);
      if (actual === undefined) {
        result.differences.push({ file: label, key: model.key, hfTensors: [], problem: `no "${model.key}" entry` });
        continue;
      }
      checkModel(job, model, actual, result);
    }
  } finally {
    await source.close();
  }
  return result;
}

function checkModel(job: RankFileCheck, model: PlannedModel, actual: PyDict, { differences, counts, stored }: HeaderCheck): void {
  const { label } = job;
  const planned = new Set(model.entries.map((e) => e.name));
  for (const key of actual.keys()) {
    if (typeof key === "string" && !planned.has(key)) {
      differences.push({ file: label, key: `${model.key}/${key}`, hfTensors: [], problem: "unexpected key" });
    }
  }
  for (const entry of model.entries) {
    const value = actual.get(entry.name);
    const key = `${model.key}/${entry.name}`;
    if (value === undefined && !actual.keys().includes(entry.name)) {
      differences.push(entryDifference(label, key, entry, "missing key"));
      continue;
    }
    if (entry.kind === "extra-state") {
      continue;
    }
    if (!(value instanceof TensorRef)) {
      differences.push(entryDifference(label, key, entry, "expected a tensor"));
      continue;
    }
    counts.tensors++;
    if (value.dtype !== entry.dtype) {
      differences.push(entryDifference(label, key, entry, `dtype ${value.dtype}; expected ${entry.dtype}`));
    } else if (!sameShape(value.shape, entry.shape)) {
      differences.push(entryDifference(label, key, entry, `shape ${formatShape(value.shape)}; expected ${formatShape(entry.shape)}`));
    } else {
      counts.bytes += byteLengthOf(entry);
      const offset = value.isContiguous ? value.contiguousRange().offset : undefined;
      stored.push({ path: job.path, label, model: model.key, key, offset, tensor: entry });
    }
  }
}

/** A planned entry found wrong, with the HF tensors it comes from (found only here: most entries match). */
function entryDifference(file: string, key: string, entry: PlannedEntry, problem: string): Difference {
  return { file, key, hfTensors: entry.kind === "tensor" ? hfSourcesOf(entry) : [], problem };
}
