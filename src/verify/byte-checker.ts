import type { ByteCheck, WholeTensorCheck } from "./byte-checks.js";
import { compareTensor, newComparePools, type ComparePools } from "./compare-tensor.js";
import { checkSource, type CompareBuffers, type PieceDifference } from "./compare-source.js";
import { OpenFiles } from "./open-files.js";
import { InputChangedError } from "./byte-compare.js";
import { inThisThread, type JobRunner } from "../engine/job-runner.js";
import type { SourceSpace } from "../engine/source-space.js";
import { readTorchCheckpoint } from "../formats/torch/checkpoint-reader.js";
import { PyDict, TensorRef } from "../formats/torch/pickle/values.js";
import { modelChunks } from "../megatron/detect.js";
import { sameShape } from "../model/tensor.js";

/** Runs byte checks (byte-checks.ts), in this thread or in worker threads (exact-threads.ts). */
export type ByteChecker = JobRunner<ByteCheck, PieceDifference[]>;

/**
 * What one thread keeps from one byte check to the next: its open rank files and buffers. The
 * buffers are overwritten by each check, so a context serves one check at a time.
 */
export interface ByteCheckContext {
  readonly space: SourceSpace;
  readonly files: OpenFiles;
  readonly buffers: CompareBuffers;
  readonly pools: ComparePools;
}

export function newByteCheckContext(space: SourceSpace): ByteCheckContext {
  return { space, files: new OpenFiles(), buffers: {}, pools: newComparePools() };
}

/** Runs one byte check with `context`. */
export function runByteCheck(check: ByteCheck, context: ByteCheckContext): Promise<PieceDifference[]> {
  return check.kind === "source" ? checkSource(check, context.space, context.files, context.buffers) : checkWhole(check, context);
}

/** Checks in this thread, one check at a time. */
export function inProcessChecker(space: SourceSpace): ByteChecker {
  const context = newByteCheckContext(space);
  return inThisThread(context, runByteCheck, () => context.files.close());
}

/** Checks tensors of one rank file whole, through the torch reader (they may be stored strided). */
async function checkWhole(check: WholeTensorCheck, context: ByteCheckContext): Promise<PieceDifference[]> {
  return context.files.with(check.path, async (source) => {
    const { root } = await readTorchCheckpoint(source);
    const chunks = new Map(root instanceof PyDict ? modelChunks(root) : []);
    const differences: PieceDifference[] = [];
    for (const stored of check.tensors) {
      const actual = chunks.get(stored.model)?.get(stored.tensor.name);
      if (!(actual instanceof TensorRef) || actual.dtype !== stored.tensor.dtype || !sameShape(actual.shape, stored.tensor.shape)) {
        throw new InputChangedError(check.path, stored.key);
      }
      const problem = await compareTensor(source, actual, stored.tensor, context.space, context.pools);
      if (problem.message !== undefined) {
        differences.push({ label: check.label, key: stored.key, element: problem.element ?? 0, problem: problem.message });
      }
    }
    return differences;
  });
}
