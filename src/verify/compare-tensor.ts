import { asBuffer, firstDifference, readStored } from "./byte-compare.js";
import { differingElement } from "./locate.js";
import { atLeast } from "../engine/grow-buffer.js";
import { prefetch } from "../engine/prefetch.js";
import { BandPool, tensorBytes } from "../engine/tensor-stream.js";
import type { SourceSpace } from "../engine/source-space.js";
import type { ByteSource } from "../formats/io/byte-source.js";
import { readTensorBytes } from "../formats/torch/checkpoint-reader.js";
import type { TensorRef } from "../formats/torch/pickle/values.js";
import type { PlannedTensor } from "../mapping/plan.js";
import { byteLengthOf, dtypeBytes } from "../model/tensor.js";

/**
 * Buffers for comparisons made one after another (one file's, or one thread's files in turn):
 * the expected side's band ring and the stored side's, each grown to the largest piece it held.
 * Reusing them spares the zeroing, page faults and GC of fresh buffers per tensor or file, which
 * on a checkpoint of small tensors cost more than the comparisons.
 */
export interface ComparePools {
  readonly expected: BandPool;
  readonly stored: Uint8Array[];
}

export function newComparePools(): ComparePools {
  return { expected: new BandPool(), stored: [] };
}

/**
 * The stored side is read in pieces larger than the expected side's bands: a positional read
 * costs tens of microseconds of thread-pool round trip, and the stored bytes need no assembly.
 */
export const STORED_CHUNK_BYTES = 1 << 20;

/** Compares one stored tensor, whose dtype and shape match its plan, with it; returns the first difference found, if any. */
export async function compareTensor(
  source: ByteSource,
  actual: TensorRef,
  planned: PlannedTensor,
  space: SourceSpace,
  pools: ComparePools = newComparePools(),
): Promise<{ message?: string; element?: number; bytes: number }> {
  const itemSize = dtypeBytes(planned.dtype);
  const contiguous = actual.isContiguous ? actual.contiguousRange() : undefined;
  const stored =
    contiguous === undefined
      ? wholeOf(await readTensorBytes(source, actual))
      : prefetch(storedChunks(source, contiguous.offset, contiguous.length, pools.stored), 1);
  let held: Uint8Array = new Uint8Array(0);
  let heldAt = 0;
  let position = 0;
  try {
    for await (const chunk of tensorBytes(planned, space, { pool: pools.expected })) {
      for (let done = 0; done < chunk.byteLength; ) {
        if (heldAt >= held.byteLength) {
          const next = await stored.next();
          if (next.done === true) {
            return { message: `stored bytes end at byte ${position + done}; expected ${byteLengthOf(planned)}`, bytes: position + done };
          }
          held = next.value;
          heldAt = 0;
        }
        const n = Math.min(chunk.byteLength - done, held.byteLength - heldAt);
        const at = firstDifference(asBuffer(chunk), done, held, heldAt, n);
        if (at < n) {
          const element = Math.floor((position + done + at) / itemSize);
          return { message: differingElement(element, planned.view, planned.segments), element, bytes: position + done + at };
        }
        done += n;
        heldAt += n;
      }
      position += chunk.byteLength;
    }
  } finally {
    await stored.return(undefined);
  }
  return { bytes: position };
}

async function* wholeOf(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/**
 * The stored tensor's bytes in chunks of at most STORED_CHUNK_BYTES, through a ring of two
 * buffers (the one being compared and the one read ahead), grown as larger tensors come.
 */
async function* storedChunks(source: ByteSource, offset: number, length: number, ring: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (let at = 0, turn = 0; at < length; at += STORED_CHUNK_BYTES, turn ^= 1) {
    const n = Math.min(STORED_CHUNK_BYTES, length - at);
    const buffer = atLeast(ring[turn], n, STORED_CHUNK_BYTES);
    ring[turn] = buffer;
    yield await readStored(source, offset + at, buffer.subarray(0, n));
  }
}
