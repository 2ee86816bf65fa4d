import { asBuffer, firstDifference, readStored } from "./byte-compare.js";
import { MAX_REPORTED_DIFFERENCES, type Difference, type ExactReport } from "./report.js";
import { openSafetensorsFolder, type SafetensorsCheckpoint } from "../formats/safetensors/folder.js";
import { dtypeBytes, formatShape, sameShape, type StoredTensor } from "../model/tensor.js";

/**
 * Bytes of a tensor read at once from each folder, into two buffers reused from one tensor to the
 * next. Fresh 32 MiB buffers per read, as before, made the round-trip check of the bench's 4.2 GiB
 * model take 3.3-3.6 s warm at 208 MiB peak RSS (read baseline 0.8-0.9 s).
 */
const CHUNK_BYTES = 1 << 20;

/** Two HF folders hold the same tensors, names, dtypes, shapes and bytes (e.g. after hf -> mcore -> hf). */
export async function compareHfFolders(a: string, b: string): Promise<ExactReport> {
  const started = performance.now();
  const left = await openSafetensorsFolder(a);
  try {
    const right = await openSafetensorsFolder(b);
    try {
      const differences: Difference[] = [];
      for (const [one, other, oneName, otherName] of [[left, right, a, b], [right, left, b, a]] as const) {
        for (const name of one.tensors.keys()) {
          if (!other.tensors.has(name)) {
            differences.push({ file: otherName, key: name, hfTensors: [name], problem: `missing (present only in ${oneName})` });
          }
        }
      }
      const buffers = { left: new Uint8Array(CHUNK_BYTES), right: new Uint8Array(CHUNK_BYTES) };
      let bytes = 0;
      // the tensors come in file order, then data-offset order: a cold cache reads each file front to back
      for (const l of left.tensors.values()) {
        const r = right.tensors.get(l.name);
        if (r === undefined) {
          continue;
        }
        const problem = await compareStored(left, l, right, r, buffers);
        bytes += problem.bytes;
        if (problem.message !== undefined) {
          differences.push({ file: b, key: l.name, hfTensors: [l.name], problem: problem.message });
        }
      }
      differences.sort((x, y) => x.key.localeCompare(y.key));
      return {
        schemaVersion: 1,
        mode: "exact",
        ok: differences.length === 0,
        hf: a,
        mcore: b,
        layout: "hf-vs-hf",
        filesChecked: left.files.length + right.files.length,
        tensorsChecked: left.tensors.size,
        bytesCompared: bytes,
        threads: 1,
        differences: differences.slice(0, MAX_REPORTED_DIFFERENCES),
        seconds: (performance.now() - started) / 1000,
      };
    } finally {
      await right.close();
    }
  } finally {
    await left.close();
  }
}

/** Compares one tensor's bytes chunk by chunk; the first differing element, named by its index. */
async function compareStored(
  left: SafetensorsCheckpoint,
  l: StoredTensor,
  right: SafetensorsCheckpoint,
  r: StoredTensor,
  buffers: { readonly left: Uint8Array; readonly right: Uint8Array },
): Promise<{ message?: string; bytes: number }> {
  if (l.dtype !== r.dtype || !sameShape(l.shape, r.shape)) {
    return { message: `${r.dtype} ${formatShape(r.shape)}; expected ${l.dtype} ${formatShape(l.shape)}`, bytes: 0 };
  }
  const [leftSource, rightSource] = [left.sourceOf(l), right.sourceOf(r)];
  for (let at = 0; at < l.byteLength; at += CHUNK_BYTES) {
    const n = Math.min(CHUNK_BYTES, l.byteLength - at);
    // both at once: reads that go to the thread pool (a cold cache) overlap
    const [x, y] = await Promise.all([
      readStored(leftSource, l.dataOffset + at, buffers.left.subarray(0, n)),
      readStored(rightSource, r.dataOffset + at, buffers.right.subarray(0, n)),
    ]);
    const differs = firstDifference(asBuffer(x), 0, y, 0, n);
    if (differs < n) {
      const element = Math.floor((at + differs) / dtypeBytes(l.dtype));
      return { message: `bytes differ from element ${element} (index ${formatShape(elementIndex(element, l.shape))})`, bytes: at + differs };
    }
  }
  return { bytes: l.byteLength };
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
