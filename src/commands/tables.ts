import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { MappingTableError, UnsupportedModelError } from "../mapping/errors.js";
import { loadProfiles, type MegatronProfiles } from "../mapping/profiles.js";
import { loadTable, type MappingTable } from "../mapping/table.js";
import { PACKAGE_ROOT } from "../package-root.js";

export const MAPPINGS_DIR = join(PACKAGE_ROOT, "mappings");
const PROFILES_FILE = "megatron.json";

/** Every model table in mappings/ (each *.json but the Megatron profiles), `extends` applied. */
export async function loadTables(dir = MAPPINGS_DIR): Promise<MappingTable[]> {
  const names = (await readdir(dir)).filter((n) => n.endsWith(".json") && n !== PROFILES_FILE && !n.endsWith(".schema.json")).sort();
  const raw = new Map(await Promise.all(names.map(async (n) => [n, JSON.parse(await readFile(join(dir, n), "utf8")) as unknown] as const)));
  return names.map((n) => loadTable(withBase(n, raw, []), join("mappings", n)));
}

/**
 * A table with `"extends": "other.json"` is the other table with its own top-level fields
 * replacing the other's (a model that differs only in config names, like Mistral from Llama).
 */
function withBase(name: string, raw: ReadonlyMap<string, unknown>, chain: readonly string[]): unknown {
  const json = raw.get(name);
  if (typeof json !== "object" || json === null || !("extends" in json)) {
    return json;
  }
  const { extends: base, ...own } = json as Record<string, unknown>;
  const file = join("mappings", name);
  if (typeof base !== "string" || !raw.has(base)) {
    throw new MappingTableError(file, [`extends: no table ${JSON.stringify(base)} in mappings/`]);
  }
  if (chain.includes(base)) {
    throw new MappingTableError(file, [`extends: cycle ${[...chain, name, base].join(" -> ")}`]);
  }
  const parent = withBase(base, raw, [...chain, name]) as Record<string, unknown>;
  return { ...parent, ...own };
}

export async function loadMegatronProfiles(dir = MAPPINGS_DIR): Promise<MegatronProfiles> {
  return loadProfiles(JSON.parse(await readFile(join(dir, PROFILES_FILE), "utf8")), join("mappings", PROFILES_FILE));
}

/** The table whose hfArchitectures include the config's architectures. */
export function selectTable(tables: readonly MappingTable[], config: unknown, configFile: string): MappingTable {
  const archs = architecturesOf(config);
  const table = tables.find((t) => t.hfArchitectures.some((a) => archs.includes(a)));
  if (table === undefined) {
    throw new UnsupportedModelError(configFile, archs.length > 0 ? archs.join(", ") : "(no \"architectures\" in config.json)", tables.flatMap((t) => t.hfArchitectures));
  }
  return table;
}

function architecturesOf(config: unknown): string[] {
  if (typeof config !== "object" || config === null) {
    return [];
  }
  const archs = (config as Record<string, unknown>)["architectures"];
  return Array.isArray(archs) ? archs.filter((a): a is string => typeof a === "string") : [];
}
