import { asBuffer, firstDifference, readStored } from "./byte-compare.js";
import { OpenFiles } from "./open-files.js";
import type { Opened } from "../engine/worker-pool.js";
import type { ByteSource } from "../formats/io/byte-source.js";
import { dtypeBytes, formatShape, type Dtype, type StoredTensor } from "../model/tensor.js";

/**
 * The byte comparison of two HF folders, cut into jobs that any thread can run: each job is a run
 * of byte ranges of tensors that both folders hold with the same dtype and shape (compare-hf.ts
 * checks that first). A range carries where its bytes lie in both folders, so the threads that
 * compare read no header: this thread and worker threads (compare-hf-worker.ts) run them alike.
 */

/** Where a tensor's bytes lie in one folder: its shard and the absolute offset of its data. */
export interface StoredAt {
  readonly file: string;
  readonly dataOffset: number;
}

/** Bytes `from`..`to` of the tensor `name` (of `dtype` and `shape`), in both folders. */
export interface TensorRange {
  readonly name: string;
  readonly from: number;
  readonly to: number;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  readonly left: StoredAt;
  readonly right: StoredAt;
}

/** A tensor both folders hold with the same dtype and shape. */
export interface TensorPair {
  readonly left: StoredTensor;
  readonly right: StoredTensor;
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
 * Cuts `pairs` (in order) into jobs of about `jobBytes`: small tensors go together, a larger
 * one is cut into ranges of `jobBytes`, a job each, so that threads share even a single large
 * tensor and finish close together.
 */
export function planCompareJobs(pairs: readonly TensorPair[], jobBytes: number): CompareJob[] {
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
  for (const pair of pairs) {
    const { byteLength } = pair.left;
    if (byteLength > jobBytes) {
      flush();
      for (let from = 0; from < byteLength; from += jobBytes) {
        jobs.push([rangeOf(pair, from, Math.min(byteLength, from + jobBytes))]);
      }
      continue;
    }
    current.push(rangeOf(pair, 0, byteLength));
    currentBytes += byteLength;
    if (currentBytes >= jobBytes) {
      flush();
    }
  }
  flush();
  return jobs;
}

function rangeOf({ left, right }: TensorPair, from: number, to: number): TensorRange {
  const at = (t: StoredTensor): StoredAt => ({ file: t.file, dataOffset: t.dataOffset });
  return { name: left.name, from, to, dtype: left.dtype, shape: left.shape, left: at(left), right: at(right) };
}

/**
 * Bytes of a tensor read at once from each folder, into two buffers reused from one range to the
 * next. Fresh 32 MiB buffers per read, as once, made the round-trip check of the bench's 4.2 GiB
 * model take 3.3-3.6 s warm at 208 MiB peak RSS (read baseline 0.8-0.9 s); 4 MiB chunks were no
 * faster than 1 MiB ones.
 */
const CHUNK_BYTES = 1 << 20;

/** What one thread compares with: the shards it opened so far, and its two buffers. */
export interface CompareContext {
  readonly files: OpenFiles;
  readonly buffers: { readonly left: Uint8Array; readonly right: Uint8Array };
}

/** One thread's comparison context; shards open on first use. */
export function openCompareContext(): Opened<CompareContext> {
  const files = new OpenFiles();
  return {
    context: { files, buffers: { left: new Uint8Array(CHUNK_BYTES), right: new Uint8Array(CHUNK_BYTES) } },
    close: () => files.close(),
  };
}

/** Runs one job with one thread's files and buffers. */
export async function runCompareJob(job: CompareJob, context: CompareContext): Promise<CompareJobResult> {
  let bytes = 0;
  const differences: RangeDifference[] = [];
  const { files, buffers } = context;
  for (const range of job) {
    // both shards are looked up once per range, not per chunk
    const found = await files.with(range.left.file, (left) => files.with(range.right.file, (right) => compareRange(left, right, buffers, range)));
    bytes += found.bytes;
    if (found.difference !== undefined) {
      differences.push(found.difference);
    }
  }
  return { bytes, differences };
}

/** Compares a range chunk by chunk, from its two open shards; its first differing element, named by its index. */
async function compareRange(
  leftSource: ByteSource,
  rightSource: ByteSource,
  buffers: CompareContext["buffers"],
  range: TensorRange,
): Promise<{ bytes: number; difference?: RangeDifference }> {
  const { name, from, to, left, right } = range;
  for (let at = from; at < to; at += CHUNK_BYTES) {
    const n = Math.min(CHUNK_BYTES, to - at);
    // both at once: reads that go to the thread pool (a cold cache) overlap
    const [x, y] = await Promise.all([
      readStored(leftSource, left.dataOffset + at, buffers.left.subarray(0, n)),
      readStored(rightSource, right.dataOffset + at, buffers.right.subarray(0, n)),
    ]);
    const differs = firstDifference(asBuffer(x), 0, y, 0, n);
    if (differs < n) {
      const element = Math.floor((at + differs) / dtypeBytes(range.dtype));
      const problem = `bytes differ from element ${element} (index ${formatShape(elementIndex(element, range.shape))})`;
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
