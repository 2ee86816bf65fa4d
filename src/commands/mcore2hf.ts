import { copyFile, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { openMcoreModel, type McoreInputOptions } from "./mcore-input.js";
import { writeAtomically } from "../engine/atomic-dir.js";
import { FiniteScan } from "../engine/finite.js";
import { counted, noProgress, type ProgressListener } from "../engine/progress.js";
import { BandPool, tensorBytes } from "../engine/tensor-stream.js";
import { writeSafetensorsSharded } from "../formats/safetensors/writer.js";
import { hfConfigOf, patchedHfConfig, TOKENIZER_FILES } from "../hf/config-writer.js";
import { invertPlan } from "../mapping/invert.js";
import { byteLengthOf, type Dtype } from "../model/tensor.js";

export interface Mcore2HfOptions extends McoreInputOptions {
  readonly mcore: string;
  readonly out: string;
  readonly maxShardBytes: number;
  /** undefined keeps the checkpoint's dtype. */
  readonly dtype?: Dtype | undefined;
  readonly onProgress?: ProgressListener;
  readonly force?: boolean;
  readonly checkFinite?: boolean;
}

/** Top-level names of an HF output folder that mcore2hf writes. */
export function isHfOutputName(name: string): boolean {
  return name === "config.json" || name.endsWith(".safetensors") || name === "model.safetensors.index.json" || TOKENIZER_FILES.includes(name);
}

export interface Mcore2HfResult {
  readonly tensors: number;
  readonly bytes: number;
  readonly files: readonly string[];
  readonly notes: readonly string[];
  readonly seconds: number;
}

/** mcore2hf: a legacy Megatron-Core checkpoint -> HF safetensors shards, index and config.json. */
export async function mcore2hf(options: Mcore2HfOptions): Promise<Mcore2HfResult> {
  const started = performance.now();
  const onProgress = options.onProgress ?? noProgress;
  const model = await openMcoreModel(options.mcore, options);
  try {
    const dtype = options.dtype ?? model.detected.dtype ?? model.dims.dtype;
    const recipes = invertPlan(model.plan, model.hfTensors, () => dtype);
    const finite = options.checkFinite === true ? new FiniteScan() : undefined;
    const pool = new BandPool();
    const payloads = model.hfTensors.map((t) => {
      const recipe = recipes.get(t.name);
      if (recipe === undefined) {
        throw new Error(`internal: no recipe for ${t.name}`);
      }
      const spec = { name: t.name, dtype, shape: t.shape };
      const bytes = () => counted(tensorBytes(recipe, model.space, { pool }), t.name, onProgress);
      return { spec, data: () => (finite === undefined ? bytes() : finite.scan(bytes(), dtype, t.name)) };
    });
    const bytes = payloads.reduce((s, p) => s + byteLengthOf(p.spec), 0);
    onProgress({ kind: "plan", files: 1, totalBytes: bytes });
    const notes = notesOf(model.folder.rankDirs.length);
    let files: string[] = [];
    await writeAtomically(options.out, async (staging) => {
      files = (await writeSafetensorsSharded(staging, payloads, { maxShardBytes: options.maxShardBytes })).files;
      finite?.throwIfAny(options.out);
      const config = model.hfConfig === undefined ? hfConfigOf(model.table.hfConfig, model.table.config, model.dims, dtype) : patchedHfConfig(model.hfConfig, dtype);
      await writeFile(join(staging, "config.json"), `${JSON.stringify(config, null, 2)}\n`);
      if (options.hfConfig !== undefined) {
        await copyTokenizer(options.hfConfig.endsWith(".json") ? dirname(options.hfConfig) : options.hfConfig, staging, notes);
      }
    }, { force: options.force === true, ours: isHfOutputName });
    return { tensors: payloads.length, bytes, files, notes, seconds: (performance.now() - started) / 1000 };
  } finally {
    await model.close();
  }
}

function notesOf(rankFiles: number): string[] {
  return [`read ${rankFiles} rank files; optimizer and RNG state (if any) are not part of an HF model and were ignored`];
}

async function copyTokenizer(from: string, to: string, notes: string[]): Promise<void> {
  const copied: string[] = [];
  for (const name of TOKENIZER_FILES) {
    const source = join(from, name);
    if ((await stat(source).catch(() => undefined))?.isFile() === true) {
      await copyFile(source, join(to, name));
      copied.push(name);
    }
  }
  notes.push(copied.length > 0 ? `copied ${copied.join(", ")} from ${from}` : `no tokenizer files found in ${from}`);
}
