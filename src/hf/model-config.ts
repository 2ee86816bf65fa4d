import { ModelConfigError } from "./errors.js";
import type { ConfigRequirement } from "../mapping/table.js";
import type { ModelDims } from "../model/model-dims.js";
import type { Dtype } from "../model/tensor.js";

/** config.json dtype names (torch_dtype in transformers 4.x, dtype in 5.x) -> Dtype. */
const CONFIG_DTYPES: Readonly<Record<string, Dtype>> = {
  bfloat16: "BF16",
  float16: "F16",
  float32: "F32",
  float: "F32",
  half: "F16",
};

const REQUIRED: readonly (keyof ModelDims)[] = ["layers", "hidden", "heads", "ffn", "vocab"];

type Json = Record<string, unknown>;

/** How a model table reads config.json: keys per dim, defaults when absent, values it requires. */
export interface ConfigSpec {
  readonly config: Readonly<Record<string, readonly string[]>>;
  readonly configDefaults?: Readonly<Record<string, number | boolean>>;
  readonly configRequires?: readonly ConfigRequirement[];
}

/**
 * config.json -> ModelDims, reading each dim from the first key the table lists that is present
 * (dotted keys reach into objects, e.g. rope_parameters.rope_theta of transformers 5.x), else
 * the table's default; values the table requires are checked.
 */
export function parseModelConfig(json: unknown, file: string, spec: ConfigSpec): ModelDims {
  const keys = spec.config;
  const defaults = spec.configDefaults ?? {};
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new ModelConfigError(file, ["must be a JSON object"]);
  }
  const config = json as Json;
  const problems: string[] = checkRequirements(config, spec.configRequires ?? []);
  const num = (dim: keyof ModelDims): number | undefined => {
    const found = lookup(config, keys[dim] ?? []);
    if (found === undefined || found.value === null) {
      const fallback = defaults[dim];
      return typeof fallback === "number" ? fallback : undefined;
    }
    if (typeof found.value !== "number" || !Number.isFinite(found.value)) {
      problems.push(`"${found.key}" must be a number; found ${JSON.stringify(found.value)}`);
      return undefined;
    }
    return found.value;
  };
  for (const dim of REQUIRED) {
    if (num(dim) === undefined && !problems.some((p) => p.includes(keys[dim]?.[0] ?? dim))) {
      problems.push(`missing "${(keys[dim] ?? [dim]).join('" or "')}"`);
    }
  }
  const heads = num("heads") ?? 1;
  const hidden = num("hidden") ?? 0;
  const dims: ModelDims = {
    layers: num("layers") ?? 0,
    hidden,
    heads,
    kvGroups: num("kvGroups") ?? heads,
    headDim: num("headDim") ?? hidden / heads,
    ffn: num("ffn") ?? 0,
    experts: num("experts") ?? 0,
    topk: num("topk") ?? 0,
    sharedFfn: num("sharedFfn") ?? 0,
    normTopk: flag(config, keys["normTopk"], defaults["normTopk"] ?? true, problems),
    vocab: num("vocab") ?? 0,
    normEps: num("normEps") ?? 1e-5,
    ropeTheta: num("ropeTheta") ?? 10000,
    maxPositions: num("maxPositions") ?? 4096,
    tieEmbeddings: flag(config, keys["tieEmbeddings"], defaults["tieEmbeddings"] ?? false, problems),
    dtype: configDtype(config, problems),
  };
  checkIntegers(dims, problems);
  if (problems.length > 0) {
    throw new ModelConfigError(file, problems);
  }
  return dims;
}

function checkIntegers(dims: ModelDims, problems: string[]): void {
  for (const key of ["layers", "hidden", "heads", "kvGroups", "headDim", "ffn", "experts", "topk", "sharedFfn", "vocab"] as const) {
    const v = dims[key];
    if (!Number.isInteger(v) || v < 0) {
      problems.push(`${key} must be a non-negative integer; found ${v}`);
    }
  }
  if (dims.heads > 0 && dims.kvGroups > 0 && dims.heads % dims.kvGroups !== 0) {
    problems.push(`num_attention_heads=${dims.heads} is not a multiple of num_key_value_heads=${dims.kvGroups}`);
  }
  if (dims.experts > 0 && (dims.topk < 1 || dims.topk > dims.experts)) {
    problems.push(`experts per token (${dims.topk}) must be between 1 and the number of experts (${dims.experts})`);
  }
}

function checkRequirements(config: Json, requires: readonly ConfigRequirement[]): string[] {
  const problems: string[] = [];
  for (const r of requires) {
    const found = lookup(config, [r.key]);
    if (found === undefined) {
      continue;
    }
    const value = JSON.stringify(found.value);
    if (!r.allowed.some((a) => JSON.stringify(a) === value)) {
      problems.push(`"${r.key}" is ${value}; supported: ${r.allowed.map((a) => JSON.stringify(a)).join(" or ")} (${r.why})`);
    }
  }
  return problems;
}

/** A boolean config field (first listed key present), else the table's default. */
function flag(config: Json, keys: readonly string[] | undefined, fallback: number | boolean, problems: string[]): boolean {
  const found = lookup(config, keys ?? []);
  if (found === undefined || found.value === null) {
    return fallback === true;
  }
  if (typeof found.value !== "boolean") {
    problems.push(`"${found.key}" must be true or false; found ${JSON.stringify(found.value)}`);
    return false;
  }
  return found.value;
}

function configDtype(config: Json, problems: string[]): Dtype {
  const raw = config["torch_dtype"] ?? config["dtype"];
  if (raw === undefined || raw === null) {
    return "BF16";
  }
  const name = String(raw).replace(/^torch\./, "");
  const dtype = CONFIG_DTYPES[name];
  if (dtype === undefined) {
    problems.push(`unsupported dtype ${JSON.stringify(raw)} (torch_dtype / dtype)`);
    return "BF16";
  }
  return dtype;
}

function lookup(config: Json, keys: readonly string[]): { key: string; value: unknown } | undefined {
  for (const key of keys) {
    let node: unknown = config;
    for (const part of key.split(".")) {
      node = typeof node === "object" && node !== null ? (node as Json)[part] : undefined;
    }
    if (node !== undefined) {
      return { key, value: node };
    }
  }
  return undefined;
}
