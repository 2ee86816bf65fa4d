import { readMatrixRect } from "../engine/rect-reader.js";
import { openSafetensorsFolder } from "../formats/safetensors/folder.js";
import { viewOf } from "../mapping/rect.js";
import { dtypeBytes, formatShape, sameShape, type StoredTensor } from "../model/tensor.js";
import type { SafetensorsCheckpoint } from "../formats/safetensors/folder.js";
import { MAX_REPORTED_DIFFERENCES, type Difference, type ExactReport } from "./report.js";

const CHUNK_BYTES = 32 << 20;

/** Two HF folders hold the same tensors, names, dtypes, shapes and bytes (e.g. after hf -> mcore -> hf). */
export async function compareHfFolders(a: string, b: string): Promise<ExactReport> {
  const started = performance.now();
  const left = await openSafetensorsFolder(a);
  try {
    const right = await openSafetensorsFolder(b);
    try {
      const differences: Difference[] = [];
      let bytes = 0;
      for (const name of new Set([...left.tensors.keys(), ...right.tensors.keys()])) {
        const l = left.tensors.get(name);
        const r = right.tensors.get(name);
        if (l === undefined || r === undefined) {
          differences.push({ file: l === undefined ? a : b, key: name, hfTensors: [name], problem: `missing (present only in ${l === undefined ? b : a})` });
          continue;
        }
        const problem = await compareStored(left, l, right, r);
        bytes += problem.bytes;
        if (problem.message !== undefined) {
          differences.push({ file: b, key: name, hfTensors: [name], problem: problem.message });
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

async function compareStored(
  left: SafetensorsCheckpoint,
  l: StoredTensor,
  right: SafetensorsCheckpoint,
  r: StoredTensor,
): Promise<{ message?: string; bytes: number }> {
  if (l.dtype !== r.dtype || !sameShape(l.shape, r.shape)) {
    return { message: `${r.dtype} ${formatShape(r.shape)}; expected ${l.dtype} ${formatShape(l.shape)}`, bytes: 0 };
  }
  const view = viewOf(l.shape);
  const rowBytes = view.cols * dtypeBytes(l.dtype);
  const band = Math.max(1, Math.floor(CHUNK_BYTES / Math.max(1, rowBytes)));
  let bytes = 0;
  for (let row = 0; row < view.rows; row += band) {
    const rect = { row, col: 0, rows: Math.min(band, view.rows - row), cols: view.cols };
    const x = await readMatrixRect(left.sourceOf(l), l.dataOffset, view, dtypeBytes(l.dtype), rect);
    const y = await readMatrixRect(right.sourceOf(r), r.dataOffset, view, dtypeBytes(r.dtype), rect);
    if (!Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength))) {
      return { message: `bytes differ in rows ${row}..${row + rect.rows - 1}`, bytes };
    }
    bytes += x.byteLength;
  }
  return { bytes };
}
