import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { loadTables, selectTable } from "./tables.js";
import { ConvertError } from "../errors.js";
import { openSafetensorsFolder, type SafetensorsCheckpoint } from "../formats/safetensors/folder.js";
import { parseSafetensorsIndex } from "../formats/safetensors/index-json.js";
import { INDEX_FILE_NAME, SINGLE_FILE_NAME } from "../formats/safetensors/spec.js";
import { TOKENIZER_FILES } from "../hf/config-writer.js";
import { openHubSnapshot, type HubProgressListener, type HubSnapshot } from "../hf/download.js";
import type { HubClient, HubOptions } from "../hf/hub.js";
import { HubNoWeightsError } from "../hf/hub-errors.js";
import { parseRepoId, type RepoRef } from "../hf/repo-id.js";
import { openRemoteCheckpoint } from "../hf/remote-checkpoint.js";
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

/** An HF model folder or Hub repo, opened, its table chosen and resolved: everything hf2mcore, plan and verify need. */
export interface HfModel {
  /** The folder (for a Hub repo: its snapshot folder in the cache, or `org/name@rev` when opened remotely). */
  readonly dir: string;
  readonly configFile: string;
  readonly config: Record<string, unknown>;
  readonly table: MappingTable;
  readonly dims: ModelDims;
  readonly checkpoint: SafetensorsCheckpoint;
  readonly tensors: readonly TensorSpec[];
  readonly bindings: readonly Binding[];
  readonly space: HfSourceSpace;
  /** Set when the input was a Hub repo id. */
  readonly hub?: { readonly repo: string; readonly revision: string; readonly commit: string; readonly snapshotDir: string };
  close(): Promise<void>;
}

export interface HfInputOptions {
  /** For a repo id: read the safetensors headers with Range requests and download no shard (plan). */
  readonly remote?: boolean;
  /** Endpoint, token and cache; from HF_ENDPOINT, HF_TOKEN, HF_HUB_CACHE / HF_HOME by default. */
  readonly hub?: HubOptions;
  readonly onDownload?: HubProgressListener;
}

/** The files a repo may have that we read: config, weights, tokenizer. */
const CONFIG_FILE = "config.json";
const CANDIDATES = [CONFIG_FILE, INDEX_FILE_NAME, SINGLE_FILE_NAME, ...TOKENIZER_FILES];

/**
 * Opens `input`: a local folder (or file) when a path of that name exists, else a Hub repo id
 * `org/name[@rev]`, downloaded into the HF cache (only config, index, shards and tokenizer
 * files) or, with `remote`, read header by header without downloading the shards.
 */
export async function openHfModel(input: string, options: HfInputOptions = {}): Promise<HfModel> {
  const ref = await hubRefOf(input);
  return ref === undefined ? openLocal(input) : openHub(ref, options);
}

/** The repo `input` names, or undefined when it is a path (an existing path always wins). */
export async function hubRefOf(input: string): Promise<RepoRef | undefined> {
  return (await stat(input).catch(() => undefined)) === undefined ? parseRepoId(input) : undefined;
}

/**
 * For a repo id, downloads what hf2mcore and verify read (reporting progress) and returns
 * `org/name@<commit>`, so that opening it again reads the same commit from the cache; a path
 * is returned as is.
 */
export async function prefetchHfInput(input: string, options: HfInputOptions = {}): Promise<string> {
  if ((await hubRefOf(input)) === undefined) {
    return input;
  }
  const model = await openHfModel(input, options);
  await model.close();
  return model.hub === undefined ? input : `${model.hub.repo}@${model.hub.commit}`;
}

/** --hf-config: a path as is; a repo id -> its snapshot folder holding config.json and the tokenizer files (no weights). */
export async function resolveHfConfigInput(input: string, options: HfInputOptions = {}): Promise<string> {
  const ref = await hubRefOf(input);
  if (ref === undefined) {
    return input;
  }
  const snapshot = await openHubSnapshot(await hubClient(options.hub), ref, CANDIDATES);
  await snapshot.download([CONFIG_FILE, ...TOKENIZER_FILES.filter((f) => snapshot.has(f))], { onProgress: options.onDownload });
  return snapshot.dir;
}

/** Loaded on first use: @huggingface/hub costs about 55 ms of start-up that a local folder does not need. */
async function hubClient(options: HubOptions | undefined): Promise<HubClient> {
  const hub = await import("../hf/hub.js");
  return new hub.HubClient(options ?? hub.hubOptionsFromEnv());
}

async function openLocal(dir: string): Promise<HfModel> {
  const configFile = join(dir, CONFIG_FILE);
  const config = await readConfig(configFile);
  const table = selectTable(await loadTables(), config, configFile);
  const dims = parseModelConfig(config, configFile, table);
  return modelOf({ dir, configFile, config, table, dims }, await openSafetensorsFolder(dir));
}

/** config.json (and the index) first, so an unsupported model fails before any weight is fetched. */
async function openHub(ref: RepoRef, options: HfInputOptions): Promise<HfModel> {
  const snapshot = await openHubSnapshot(await hubClient(options.hub), ref, CANDIDATES);
  const onProgress = options.onDownload;
  const indexed = snapshot.has(INDEX_FILE_NAME);
  if (!indexed && !snapshot.has(SINGLE_FILE_NAME)) {
    await snapshot.download([CONFIG_FILE], { onProgress });
    throw new HubNoWeightsError(snapshot.label, [INDEX_FILE_NAME, SINGLE_FILE_NAME]);
  }
  await snapshot.download(indexed ? [CONFIG_FILE, INDEX_FILE_NAME] : [CONFIG_FILE], { onProgress });
  const configFile = join(snapshot.dir, CONFIG_FILE);
  const config = await readConfig(configFile);
  const table = selectTable(await loadTables(), config, `${snapshot.label}:${CONFIG_FILE}`);
  const dims = parseModelConfig(config, configFile, table);
  const index = indexed ? await readIndex(snapshot) : undefined;
  const shards = index === undefined ? [SINGLE_FILE_NAME] : [...new Set(index.index.weightMap.values())].sort();
  const hub = { repo: ref.id, revision: ref.revision, commit: snapshot.commit, snapshotDir: snapshot.dir };
  await snapshot.require(shards, indexed ? INDEX_FILE_NAME : undefined);
  if (options.remote === true) {
    return modelOf({ dir: snapshot.label, configFile, config, table, dims, hub }, await openRemoteCheckpoint(snapshot, shards, index));
  }
  await snapshot.download([...shards, ...TOKENIZER_FILES.filter((f) => snapshot.has(f))], { onProgress, referencedBy: INDEX_FILE_NAME });
  return modelOf({ dir: snapshot.dir, configFile, config, table, dims, hub }, await openSafetensorsFolder(snapshot.dir));
}

async function readIndex(snapshot: HubSnapshot): Promise<{ file: string; index: ReturnType<typeof parseSafetensorsIndex> }> {
  const file = join(snapshot.dir, INDEX_FILE_NAME);
  const text = await readFile(file, "utf8").catch((cause: unknown) => {
    throw new HfInputError(`${file}: cannot read the downloaded index`, { cause });
  });
  return { file, index: parseSafetensorsIndex(text, `${snapshot.label}:${INDEX_FILE_NAME}`) };
}

type ModelHead = Pick<HfModel, "dir" | "configFile" | "config" | "table" | "dims" | "hub">;

/** Resolves the table against the checkpoint's tensors; closes the checkpoint on failure. */
async function modelOf(head: ModelHead, checkpoint: SafetensorsCheckpoint): Promise<HfModel> {
  try {
    const real: TensorSpec[] = [...checkpoint.tensors.values()].map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape }));
    const expanded = expandViews(real, head.table.hfViews);
    const bindings = resolveTable(head.table, expanded.tensors, head.dims, head.dir);
    const shapes = new Map(expanded.tensors.map((t) => [t.name, t.shape] as const));
    const space = new HfSourceSpace(checkpoint, expanded.origins, shapes);
    return { ...head, checkpoint, tensors: expanded.tensors, bindings, space, close: () => checkpoint.close() };
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
