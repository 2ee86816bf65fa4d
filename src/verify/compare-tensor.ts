import { locateElement } from "./locate.js";
import { atLeast } from "../engine/grow-buffer.js";
import { prefetch } from "../engine/prefetch.js";
import { BandPool, tensorBytes } from "../engine/tensor-stream.js";
import type { SourceSpace } from "../engine/source-space.js";
import type { ByteSource } from "../formats/io/byte-source.js";
import { readTensorBytes } from "../formats/torch/checkpoint-reader.js";
import type { TensorRef } from "../formats/torch/pickle/values.js";
import type { PlannedTensor } from "../mapping/plan.js";
import { byteLengthOf, dtypeBytes, formatShape } from "../model/tensor.js";

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
const STORED_CHUNK_BYTES = 1 << 20;

/** Compares one stored tensor against its plan; returns the first problem found, if any. */
export async function compareTensor(
  source: ByteSource,
  actual: TensorRef,
  planned: PlannedTensor,
  space: SourceSpace,
  pools: ComparePools = newComparePools(),
): Promise<{ message?: string; bytes: number }> {
  if (actual.dtype !== planned.dtype) {
    return { message: `dtype ${actual.dtype}; expected ${planned.dtype}`, bytes: 0 };
  }
  if (formatShape(actual.shape) !== formatShape(planned.shape)) {
    return { message: `shape ${formatShape(actual.shape)}; expected ${formatShape(planned.shape)}`, bytes: 0 };
  }
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
        const at = firstDifference(chunk.subarray(done, done + n), held.subarray(heldAt, heldAt + n));
        if (at >= 0) {
          const element = Math.floor((position + done + at) / itemSize);
          return {
            message: `bytes differ from element ${element} on (row ${Math.floor(element / planned.view.cols)}, col ${element % planned.view.cols}); that element comes from ${locateElement(element, planned.view, planned.segments)}`,
            bytes: position + done + at,
          };
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

async function readStored(source: ByteSource, offset: number, into: Uint8Array): Promise<Uint8Array> {
  if (source.readInto === undefined) {
    return source.read(offset, into.byteLength);
  }
  await source.readInto(into, offset);
  return into;
}

function firstDifference(a: Uint8Array, b: Uint8Array): number {
  if (Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))) {
    return -1;
  }
  const n = Math.min(a.byteLength, b.byteLength);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) {
      return i;
    }
  }
  return n;
}
