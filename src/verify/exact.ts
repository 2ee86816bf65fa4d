import { planByteChecks, type ByteCheck, type StoredBytes, type WholeTensorCheck } from "./byte-checks.js";
import { compareTensor, newComparePools, type ComparePools } from "./compare-tensor.js";
import { checkSource, type CompareBuffers, type PieceDifference } from "./compare-source.js";
import { RankFiles } from "./rank-files.js";
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
import { byteLengthOf, formatShape } from "../model/tensor.js";

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

/** Rank-file headers read at once. */
const HEADERS_AT_ONCE = 8;

/** Runs byte checks (byte-checks.ts), in this thread or in worker threads (exact-threads.ts). */
export interface ByteChecker {
  /** How many checks it runs at once. */
  readonly parallel: number;
  check(check: ByteCheck): Promise<PieceDifference[]>;
  close(): Promise<void>;
}

/** What one thread keeps from one byte check to the next: its open rank files and buffers. */
export interface ByteCheckContext {
  readonly space: SourceSpace;
  readonly files: RankFiles;
  readonly buffers: CompareBuffers;
  readonly pools: ComparePools;
}

export function newByteCheckContext(space: SourceSpace): ByteCheckContext {
  return { space, files: new RankFiles(), buffers: {}, pools: newComparePools() };
}

/** Runs one byte check with `context` (not shared with a check running at the same time). */
export function runByteCheck(check: ByteCheck, context: ByteCheckContext): Promise<PieceDifference[]> {
  return check.kind === "source" ? checkSource(check, context.space, context.files, context.buffers) : checkWhole(check, context);
}

/**
 * Checks in this thread, one check at a time (reads from the page cache are copies on this
 * thread anyway). Each check starts from the event loop: reads that complete at once chain
 * promise callbacks without end, and worker threads' answers would wait for the last check.
 */
export function inProcessChecker(space: SourceSpace): ByteChecker {
  const context = newByteCheckContext(space);
  return {
    parallel: 1,
    check: async (check) => {
      await new Promise((resolve) => setImmediate(resolve));
      return runByteCheck(check, context);
    },
    close: () => context.files.close(),
  };
}

/**
 * Checks a checkpoint folder against a plan: the rank-folder set, every file's key set, every
 * tensor's dtype and shape (read from each file's header), then every byte of every tensor
 * (replicas and vocab padding included) against the bytes the plan derives from the HF tensors,
 * HF tensor by HF tensor (byte-checks.ts). `sourceOrder` orders the HF tensors (by their place
 * in the shards, so that a cold cache reads them in order).
 */
export async function checkCheckpoint(
  plan: ConversionPlan,
  folder: CheckpointFolder,
  checkers: readonly ByteChecker[],
  sourceOrder?: (name: string) => number,
): Promise<{ differences: Difference[]; counts: ExactCounts }> {
  const differences: Difference[] = [];
  const expected = new Set(plan.files.map((f) => rankDirName(f.rank, plan.layout)));
  for (const dir of folder.rankDirs.filter((d) => !expected.has(d))) {
    differences.push({ file: dir, key: "", hfTensors: [], problem: "unexpected rank folder for this layout" });
  }
  const files: RankFileCheck[] = [];
  for (const file of plan.files) {
    const dir = rankDirName(file.rank, plan.layout);
    if (folder.rankDirs.includes(dir)) {
      files.push({ path: rankFileIn(folder, dir), label: `${dir}/${RANK_FILE}`, plan: file });
    } else {
      differences.push({ file: dir, key: "", hfTensors: [], problem: "missing rank folder" });
    }
  }
  const counts: ExactCounts = { files: 0, tensors: 0, bytes: 0 };
  const stored: StoredBytes[] = [];
  // several at once: each is a few small reads and opening the file, round trips to libuv's pool
  const headers = new Array<Awaited<ReturnType<typeof checkHeader>>>(files.length);
  await runPool([...files.keys()], HEADERS_AT_ONCE, async (i) => {
    headers[i] = await checkHeader(files[i] as RankFileCheck);
  });
  for (const header of headers) {
    differences.push(...header.differences);
    stored.push(...header.stored);
    counts.files += header.counts.files;
    counts.tensors += header.counts.tensors;
    counts.bytes += header.counts.bytes;
  }
  const found = new Map<string, PieceDifference>();
  await runChecks(planByteChecks(stored, sourceOrder), checkers, (d) => {
    const id = `${d.label}\0${d.key}`;
    if ((found.get(id)?.element ?? Infinity) > d.element) {
      found.set(id, d);
    }
  });
  const sources = new Map(stored.map((s) => [`${s.label}\0${s.key}`, [...new Set(s.tensor.segments.map((g) => g.source))]]));
  for (const [id, d] of found) {
    differences.push({ file: d.label, key: d.key, hfTensors: sources.get(id) ?? [], problem: d.problem });
  }
  differences.sort((a, b) => a.file.localeCompare(b.file) || a.key.localeCompare(b.key));
  return { differences, counts };
}

/** Runs `checks` in order on all `checkers` at once (each as many at a time as it takes), the next going to whichever is free first. */
async function runChecks(checks: readonly ByteCheck[], checkers: readonly ByteChecker[], found: (d: PieceDifference) => void): Promise<void> {
  const lanes = checkers.flatMap((c) => Array.from({ length: c.parallel }, () => c));
  await runPool(checks, lanes.length, async (check, lane) => {
    (await (lanes[lane] as ByteChecker).check(check)).forEach(found);
  });
}

/**
 * Reads one rank file's header and checks what it holds against its plan: a dict, the model
 * entries, their keys, each tensor's dtype and shape. Returns the tensors whose bytes are to be
 * checked; their bytes count as compared.
 */
export async function checkHeader(job: RankFileCheck): Promise<{ differences: Difference[]; counts: ExactCounts; stored: StoredBytes[] }> {
  const { path, label, plan } = job;
  const differences: Difference[] = [];
  const counts: ExactCounts = { files: 0, tensors: 0, bytes: 0 };
  const stored: StoredBytes[] = [];
  const source = await FileSource.open(path);
  try {
    const { root } = await readTorchCheckpoint(source);
    counts.files++;
    if (!(root instanceof PyDict)) {
      differences.push({ file: label, key: "", hfTensors: [], problem: "the file does not hold a dict" });
      return { differences, counts, stored };
    }
    const chunks = new Map(modelChunks(root));
    for (const model of plan.models) {
      const actual = chunks.get(model.key);
      if (actual === undefined) {
        differences.push({ file: label, key: model.key, hfTensors: [], problem: `no "${model.key}" entry` });
        continue;
      }
      checkModel(job, model, actual, differences, counts, stored);
    }
  } finally {
    await source.close();
  }
  return { differences, counts, stored };
}

function checkModel(
  job: RankFileCheck,
  model: PlannedModel,
  actual: PyDict,
  differences: Difference[],
  counts: ExactCounts,
  stored: StoredBytes[],
): void {
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
    counts.tensors++;
    if (value.dtype !== entry.dtype) {
      differences.push({ file: label, key, hfTensors, problem: `dtype ${value.dtype}; expected ${entry.dtype}` });
    } else if (formatShape(value.shape) !== formatShape(entry.shape)) {
      differences.push({ file: label, key, hfTensors, problem: `shape ${formatShape(value.shape)}; expected ${formatShape(entry.shape)}` });
    } else {
      counts.bytes += byteLengthOf(entry);
      stored.push({ path: job.path, label, key, offset: value.isContiguous ? value.contiguousRange().offset : undefined, tensor: entry });
    }
  }
}

/** Checks tensors of one rank file whole, through the torch reader (they may be stored strided). */
async function checkWhole(check: WholeTensorCheck, context: ByteCheckContext): Promise<PieceDifference[]> {
  return context.files.with(check.path, async (source) => {
    const { root } = await readTorchCheckpoint(source);
    const chunks = new Map(root instanceof PyDict ? modelChunks(root) : []);
    const differences: PieceDifference[] = [];
    for (const { key, model, tensor } of check.tensors) {
      const actual = chunks.get(model)?.get(tensor.name);
      if (!(actual instanceof TensorRef)) {
        throw new Error(`internal: ${check.label} ${key} changed while it was checked`);
      }
      const problem = await compareTensor(source, actual, tensor, context.space, context.pools);
      if (problem.message !== undefined) {
        differences.push({ label: check.label, key, element: 0, problem: problem.message });
      }
    }
    return differences;
  });
}
