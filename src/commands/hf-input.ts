import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { loadTables, selectTable } from "./tables.js";
import { ConvertError } from "../errors.js";
import { openSafetensorsFolder, type SafetensorsCheckpoint } from "../formats/safetensors/folder.js";
import { parseModelConfig } from "../hf/model-config.js";
import { HfSourceSpace } from "../hf/source-space.js";
import { expandViews } from "../mapping/hf-views.js";
import { resolveTable, type Binding } from "../mapping/resolve.js";
import type { MappingTable } from "../mapping/table.js";
import type { ModelDims } from "../model/model-dims.js";
import type { TensorSpec } from "../model/tensor.js";

export class HfInputError extends ConvertError {
  readonly code = "hf.bad-folder";
}

/** An HF model folder, opened, its table chosen and resolved: everything hf2mcore and verify need. */
export interface HfModel {
  readonly dir: string;
  readonly configFile: string;
  readonly config: Record<string, unknown>;
  readonly table: MappingTable;
  readonly dims: ModelDims;
  readonly checkpoint: SafetensorsCheckpoint;
  readonly tensors: readonly TensorSpec[];
  readonly bindings: readonly Binding[];
  readonly space: HfSourceSpace;
  close(): Promise<void>;
}

export async function openHfModel(dir: string): Promise<HfModel> {
  const configFile = join(dir, "config.json");
  const config = await readConfig(configFile);
  const table = selectTable(await loadTables(), config, configFile);
  const dims = parseModelConfig(config, configFile, table.config);
  const checkpoint = await openSafetensorsFolder(dir);
  try {
    const real: TensorSpec[] = [...checkpoint.tensors.values()].map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape }));
    const expanded = expandViews(real, table.hfViews);
    const bindings = resolveTable(table, expanded.tensors, dims, dir);
    const shapes = new Map(expanded.tensors.map((t) => [t.name, t.shape] as const));
    const space = new HfSourceSpace(checkpoint, expanded.origins, shapes);
    return { dir, configFile, config, table, dims, checkpoint, tensors: expanded.tensors, bindings, space, close: () => checkpoint.close() };
  } catch (error) {
    await checkpoint.close();
    throw error;
  }
}

async function readConfig(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (cause) {
    throw new HfInputError(`${file}: cannot read the model config (is this a HuggingFace model folder?)`, { cause });
  }
  try {
    const json: unknown = JSON.parse(text);
    if (typeof json !== "object" || json === null || Array.isArray(json)) {
      throw new Error("not a JSON object");
    }
    return json as Record<string, unknown>;
  } catch (cause) {
    throw new HfInputError(`${file}: invalid JSON: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}
