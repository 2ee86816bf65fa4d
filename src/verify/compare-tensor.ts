import { locateElement } from "./locate.js";
import { tensorBytes, type BandPool } from "../engine/tensor-stream.js";
import type { SourceSpace } from "../engine/source-space.js";
import type { ByteSource } from "../formats/io/byte-source.js";
import { readTensorBytes } from "../formats/torch/checkpoint-reader.js";
import type { TensorRef } from "../formats/torch/pickle/values.js";
import type { PlannedTensor } from "../mapping/plan.js";
import { dtypeBytes, formatShape } from "../model/tensor.js";

/** Compares one stored tensor against its plan; returns the first problem found, if any. */
export async function compareTensor(
  source: ByteSource,
  actual: TensorRef,
  planned: PlannedTensor,
  space: SourceSpace,
  pool?: BandPool,
): Promise<{ message?: string; bytes: number }> {
  if (actual.dtype !== planned.dtype) {
    return { message: `dtype ${actual.dtype}; expected ${planned.dtype}`, bytes: 0 };
  }
  if (formatShape(actual.shape) !== formatShape(planned.shape)) {
    return { message: `shape ${formatShape(actual.shape)}; expected ${formatShape(planned.shape)}`, bytes: 0 };
  }
  const itemSize = dtypeBytes(planned.dtype);
  const contiguous = actual.isContiguous ? actual.contiguousRange() : undefined;
  const whole = contiguous === undefined ? await readTensorBytes(source, actual) : undefined;
  let position = 0;
  let scratch = new Uint8Array(0);
  for await (const chunk of tensorBytes(planned, space, pool === undefined ? {} : { pool })) {
    if (whole === undefined && scratch.byteLength < chunk.byteLength) {
      scratch = new Uint8Array(chunk.byteLength);
    }
    const stored =
      whole !== undefined
        ? whole.subarray(position, position + chunk.byteLength)
        : await readStored(source, (contiguous?.offset ?? 0) + position, scratch.subarray(0, chunk.byteLength));
    const at = firstDifference(chunk, stored);
    if (at >= 0) {
      const element = Math.floor((position + at) / itemSize);
      return {
        message: `bytes differ from element ${element} on (row ${Math.floor(element / planned.view.cols)}, col ${element % planned.view.cols}); that element comes from ${locateElement(element, planned.view, planned.segments)}`,
        bytes: position + at,
      };
    }
    position += chunk.byteLength;
  }
  return { bytes: position };
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
