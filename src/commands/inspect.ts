import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { openSafetensorsFile } from "../formats/safetensors/reader.js";
import { openSafetensorsFolder } from "../formats/safetensors/folder.js";
import { readTorchCheckpointFile } from "../formats/torch/checkpoint-reader.js";
import { PyDict, PyFloat, PyNamespace, PyObject, TensorRef, type PyValue } from "../formats/torch/pickle/values.js";
import { openCheckpointFolder, rankFileIn } from "../megatron/checkpoint-folder.js";
import { byteLengthOf, type Dtype } from "../model/tensor.js";
import { ConvertError } from "../errors.js";

export interface InspectedTensor {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  readonly bytes: number;
}

export interface InspectedFile {
  readonly file: string;
  readonly format: "safetensors" | "torch";
  readonly tensors: readonly InspectedTensor[];
  /** Non-tensor entries: dotted key -> a JSON-friendly value (args fields, iteration, _extra_state kinds). */
  readonly entries: Readonly<Record<string, unknown>>;
}

export class InspectError extends ConvertError {
  readonly code = "inspect.unknown-input";
}

/** Lists what a safetensors file/folder, a .pt file or a Megatron checkpoint folder holds. */
export async function inspectPath(path: string): Promise<InspectedFile[]> {
  const info = await stat(path).catch(() => undefined);
  if (info === undefined) {
    throw new InspectError(`${path}: no such file or folder`);
  }
  if (info.isFile()) {
    return [path.endsWith(".safetensors") ? await inspectSafetensors(path) : await inspectTorch(path)];
  }
  const names = await readdir(path);
  if (names.some((n) => n.endsWith(".safetensors"))) {
    const folder = await openSafetensorsFolder(path);
    try {
      return folder.files.map((f) => ({ file: f.source.name, format: "safetensors" as const, tensors: f.tensors.map(tensorOf), entries: { ...f.metadata } }));
    } finally {
      await folder.close();
    }
  }
  if (names.some((n) => n.endsWith(".pt"))) {
    return Promise.all(names.filter((n) => n.endsWith(".pt")).sort().map((n) => inspectTorch(join(path, n))));
  }
  const folder = await openCheckpointFolder(path);
  const files: InspectedFile[] = [];
  for (const dir of folder.rankDirs) {
    files.push(await inspectTorch(rankFileIn(folder, dir)));
  }
  return files;
}

async function inspectSafetensors(path: string): Promise<InspectedFile> {
  const file = await openSafetensorsFile(path);
  try {
    return { file: path, format: "safetensors", tensors: file.tensors.map(tensorOf), entries: { ...file.metadata } };
  } finally {
    await file.close();
  }
}

async function inspectTorch(path: string): Promise<InspectedFile> {
  const { root } = await readTorchCheckpointFile(path);
  const tensors: InspectedTensor[] = [];
  const entries: Record<string, unknown> = {};
  walk(root, "", tensors, entries);
  return { file: path, format: "torch", tensors, entries };
}

function tensorOf(t: { name: string; dtype: Dtype; shape: readonly number[] }): InspectedTensor {
  return { name: t.name, dtype: t.dtype, shape: t.shape, bytes: byteLengthOf(t) };
}

function walk(value: PyValue, key: string, tensors: InspectedTensor[], entries: Record<string, unknown>): void {
  if (value instanceof TensorRef) {
    tensors.push(tensorOf({ name: key, dtype: value.dtype, shape: value.shape }));
  } else if (value instanceof PyNamespace) {
    entries[key] = Object.fromEntries(value.attrs.entries.map(([k, v]) => [String(k), plain(v)]));
  } else if (value instanceof PyDict) {
    for (const [k, v] of value.entries) {
      walk(v, key === "" ? String(k) : `${key}/${String(k)}`, tensors, entries);
    }
  } else {
    entries[key] = plain(value);
  }
}

function plain(value: PyValue): unknown {
  if (value instanceof PyFloat) {
    return value.value;
  }
  if (typeof value === "bigint") {
    return value.toString();
  }
  if (value === null || typeof value === "number" || typeof value === "string" || typeof value === "boolean") {
    return value;
  }
  if (Array.isArray(value)) {
    return value.map(plain);
  }
  if (value instanceof PyObject) {
    return `<${value.module}.${value.name}>`;
  }
  return `<${value.constructor.name}>`;
}
