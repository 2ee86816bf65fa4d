import { asBuffer, firstDifference, InputChangedError, readStored } from "./byte-compare.js";
import type { Opened } from "../engine/worker-pool.js";
import { openSafetensorsFolder, type SafetensorsCheckpoint } from "../formats/safetensors/folder.js";
import { dtypeBytes, formatShape, type StoredTensor } from "../model/tensor.js";

/**
 * The byte comparison of two HF folders, cut into jobs that any thread can run: each job is a run
 * of byte ranges of tensors that both folders hold with the same dtype and shape (compare-hf.ts
 * checks that first). This thread and worker threads (compare-hf-worker.ts) run them alike.
 */

/** Bytes `from`..`to` of the tensor `name`, in both folders. */
export interface TensorRange {
  readonly name: string;
  readonly from: number;
  readonly to: number;
}

/** Ranges compared in one go, in the first folder's file order. */
export type CompareJob = readonly TensorRange[];

/** The first differing element found in a range. */
export interface RangeDifference {
  readonly name: string;
  readonly element: number;
  readonly problem: string;
}

export interface CompareJobResult {
  /** Bytes compared, each side (up to and including a range's first difference). */
  readonly bytes: number;
  readonly differences: RangeDifference[];
}

/**
 * Cuts `tensors` (in order) into jobs of about `jobBytes`: small tensors go together, a larger
 * one is cut into ranges of `jobBytes`, a job each, so that threads share even a single large
 * tensor and finish close together.
 */
export function planCompareJobs(tensors: readonly { readonly name: string; readonly byteLength: number }[], jobBytes: number): CompareJob[] {
  const jobs: CompareJob[] = [];
  let current: TensorRange[] = [];
  let currentBytes = 0;
  const flush = (): void => {
    if (current.length > 0) {
      jobs.push(current);
      current = [];
      currentBytes = 0;
    }
  };
  for (const { name, byteLength } of tensors) {
    if (byteLength > jobBytes) {
      flush();
      for (let from = 0; from < byteLength; from += jobBytes) {
        jobs.push([{ name, from, to: Math.min(byteLength, from + jobBytes) }]);
      }
      continue;
    }
    current.push({ name, from: 0, to: byteLength });
    currentBytes += byteLength;
    if (currentBytes >= jobBytes) {
      flush();
    }
  }
  flush();
  return jobs;
}

/**
 * Bytes of a tensor read at once from each folder, into two buffers reused from one range to the
 * next. Fresh 32 MiB buffers per read, as once, made the round-trip check of the bench's 4.2 GiB
 * model take 3.3-3.6 s warm at 208 MiB peak RSS (read baseline 0.8-0.9 s); 4 MiB chunks were no
 * faster than 1 MiB ones.
 */
const CHUNK_BYTES = 1 << 20;

/** What one thread compares with: both folders, opened, and its two buffers. */
export interface FolderPair {
  readonly left: SafetensorsCheckpoint;
  readonly right: SafetensorsCheckpoint;
  readonly buffers: { readonly left: Uint8Array; readonly right: Uint8Array };
}

/** Opens both folders (headers only) for one thread's comparisons. */
export async function openFolderPair(a: string, b: string): Promise<Opened<FolderPair>> {
  const left = await openSafetensorsFolder(a);
  const right = await openSafetensorsFolder(b).catch(async (error: unknown) => {
    await left.close();
    throw error;
  });
  const buffers = { left: new Uint8Array(CHUNK_BYTES), right: new Uint8Array(CHUNK_BYTES) };
  return {
    context: { left, right, buffers },
    close: async () => {
      await Promise.all([left.close(), right.close()]);
    },
  };
}

/** Runs one job with one thread's folders and buffers. */
export async function runCompareJob(job: CompareJob, pair: FolderPair): Promise<CompareJobResult> {
  let bytes = 0;
  const differences: RangeDifference[] = [];
  for (const range of job) {
    const l = tensorIn(pair.left, range.name);
    const r = tensorIn(pair.right, range.name);
    const found = await compareRange(pair, l, r, range);
    bytes += found.bytes;
    if (found.difference !== undefined) {
      differences.push(found.difference);
    }
  }
  return { bytes, differences };
}

function tensorIn(folder: SafetensorsCheckpoint, name: string): StoredTensor {
  const tensor = folder.tensors.get(name);
  if (tensor === undefined) {
    throw new InputChangedError(folder.location, name, "folder");
  }
  return tensor;
}

/** Compares a range chunk by chunk; its first differing element, named by its index. */
async function compareRange(
  { left, right, buffers }: FolderPair,
  l: StoredTensor,
  r: StoredTensor,
  { name, from, to }: TensorRange,
): Promise<{ bytes: number; difference?: RangeDifference }> {
  if (to > l.byteLength || to > r.byteLength) {
    throw new InputChangedError(to > l.byteLength ? left.location : right.location, name, "folder");
  }
  const [leftSource, rightSource] = [left.sourceOf(l), right.sourceOf(r)];
  for (let at = from; at < to; at += CHUNK_BYTES) {
    const n = Math.min(CHUNK_BYTES, to - at);
    // both at once: reads that go to the thread pool (a cold cache) overlap
    const [x, y] = await Promise.all([
      readStored(leftSource, l.dataOffset + at, buffers.left.subarray(0, n)),
      readStored(rightSource, r.dataOffset + at, buffers.right.subarray(0, n)),
    ]);
    const differs = firstDifference(asBuffer(x), 0, y, 0, n);
    if (differs < n) {
      const element = Math.floor((at + differs) / dtypeBytes(l.dtype));
      const problem = `bytes differ from element ${element} (index ${formatShape(elementIndex(element, l.shape))})`;
      return { bytes: at + differs - from, difference: { name, element, problem } };
    }
  }
  return { bytes: to - from };
}

/** The multi-dimensional index of the row-major element `element` of a tensor of `shape`. */
function elementIndex(element: number, shape: readonly number[]): number[] {
  const index = new Array<number>(shape.length);
  let rest = element;
  for (let d = shape.length - 1; d >= 0; d--) {
    const size = shape[d] as number;
    index[d] = rest % size;
    rest = Math.floor(rest / size);
  }
  return index;
}
