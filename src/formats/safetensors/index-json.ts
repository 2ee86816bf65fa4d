import { IndexBadError } from "./errors.js";

/**
 * `model.safetensors.index.json` (shared/torch-format.md §5.2):
 *   { "metadata": { "total_parameters": <int>, "total_size": <int>, ... },
 *     "weight_map": { "<tensor>": "<shard file name>", ... } }
 * `total_size` counts tensor data bytes only (no headers). Readers need only `weight_map`.
 */
export interface SafetensorsIndex {
  readonly metadata: Record<string, unknown>;
  /** Tensor name -> shard file name (a bare file name in the index's folder). */
  readonly weightMap: ReadonlyMap<string, string>;
}

export function parseSafetensorsIndex(text: string, file: string): SafetensorsIndex {
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch (cause) {
    throw new IndexBadError(file, `invalid JSON: ${cause instanceof Error ? cause.message : String(cause)}`, cause);
  }
  if (!isObject(root)) {
    throw new IndexBadError(file, "the top level is not a JSON object");
  }
  const metadata = Object.hasOwn(root, "metadata") ? root["metadata"] : {};
  if (!isObject(metadata)) {
    throw new IndexBadError(file, '"metadata" is not an object');
  }
  return { metadata, weightMap: parseWeightMap(Object.hasOwn(root, "weight_map") ? root["weight_map"] : undefined, file) };
}

function parseWeightMap(value: unknown, file: string): Map<string, string> {
  if (!isObject(value)) {
    throw new IndexBadError(file, '"weight_map" is missing or not an object');
  }
  const map = new Map<string, string>();
  for (const [tensor, shard] of Object.entries(value)) {
    if (typeof shard !== "string" || !isBareFileName(shard)) {
      throw new IndexBadError(file, `weight_map[${JSON.stringify(tensor)}] must be a shard file name, found ${JSON.stringify(shard)}`);
    }
    map.set(tensor, shard);
  }
  if (map.size === 0) {
    throw new IndexBadError(file, '"weight_map" is empty');
  }
  return map;
}

/**
 * The index as transformers writes it: `json.dumps(index, indent=2, sort_keys=True) + "\n"`
 * (Python's default ensure_ascii escapes everything outside printable ASCII as \uXXXX).
 */
export function serializeSafetensorsIndex(weightMap: ReadonlyMap<string, string>, totalSize: number, totalParameters: number): string {
  // Built by hand: a JS object would move integer-like tensor names ("0", "1") to the front.
  const entries = [...weightMap].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const lines = entries.map(([tensor, shard]) => `    ${JSON.stringify(tensor)}: ${JSON.stringify(shard)}`);
  const map = lines.length === 0 ? "{}" : `{\n${lines.join(",\n")}\n  }`;
  const meta = `{\n    "total_parameters": ${totalParameters},\n    "total_size": ${totalSize}\n  }`;
  return asciiOnly(`{\n  "metadata": ${meta},\n  "weight_map": ${map}\n}`) + "\n";
}

function asciiOnly(json: string): string {
  return json.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

function isBareFileName(name: string): boolean {
  return name !== "" && name !== "." && name !== ".." && !name.includes("/") && !name.includes("\\");
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
