import { MappingTableError } from "./errors.js";
import { compilePattern, type Pattern } from "./pattern.js";

/** Layer-spec choice: TE or local Megatron modules. */
export const LAYER_SPECS = ["te", "local"] as const;
export type LayerSpec = (typeof LAYER_SPECS)[number];

/** Expert implementation choice. */
export const EXPERT_IMPLS = ["sequential", "te-grouped", "grouped"] as const;
export type ExpertImpl = (typeof EXPERT_IMPLS)[number];

export interface Rename {
  readonly from: Pattern;
  readonly to: Pattern;
  /** Applies only when the model chunk also holds this tensor (a norm fused into the linear after it). */
  readonly ifPresent?: Pattern;
}

export interface Pack {
  readonly members: Pattern;
  readonly into: Pattern;
  readonly declaredShape: "concat-rows" | "concat-cols";
}

export interface SpecProfile {
  readonly renames: readonly Rename[];
  readonly extraState: ReadonlySet<string>;
  readonly stateOnlyModules: readonly { readonly module: Pattern; readonly beside: Pattern }[];
}

export interface ExpertProfile {
  readonly grouped: boolean;
  readonly renames: readonly Rename[];
  readonly packs: readonly Pack[];
}

/** mappings/megatron.json: how Megatron names and packs tensors, for every model alike. */
export interface MegatronProfiles {
  readonly file: string;
  readonly specs: Readonly<Record<LayerSpec, SpecProfile>>;
  readonly experts: Readonly<Record<ExpertImpl, ExpertProfile>>;
  readonly moduleOrder: readonly string[];
  readonly leafOrder: readonly string[];
}

type Json = Record<string, unknown>;

export function loadProfiles(json: unknown, file: string): MegatronProfiles {
  const problems: string[] = [];
  const root = isObject(json) ? json : {};
  const specsRaw = isObject(root["specs"]) ? root["specs"] : {};
  const expertsRaw = isObject(root["experts"]) ? root["experts"] : {};
  const specs = {} as Record<LayerSpec, SpecProfile>;
  for (const spec of LAYER_SPECS) {
    specs[spec] = parseSpec(specsRaw[spec], `specs.${spec}`, problems);
  }
  const experts = {} as Record<ExpertImpl, ExpertProfile>;
  for (const impl of EXPERT_IMPLS) {
    experts[impl] = parseExperts(expertsRaw[impl], `experts.${impl}`, problems);
  }
  const moduleOrder = strings(root["moduleOrder"], "moduleOrder", problems);
  const leafOrder = strings(root["leafOrder"], "leafOrder", problems);
  if (problems.length > 0) {
    throw new MappingTableError(file, problems);
  }
  return { file, specs, experts, moduleOrder, leafOrder };
}

function parseSpec(raw: unknown, at: string, problems: string[]): SpecProfile {
  const obj = object(raw, at, problems);
  const modules = Array.isArray(obj["stateOnlyModules"]) ? obj["stateOnlyModules"] : [];
  return {
    renames: renames(obj["renames"], `${at}.renames`, problems),
    extraState: new Set(strings(obj["extraState"], `${at}.extraState`, problems)),
    stateOnlyModules: modules.flatMap((m, i) => {
      const o = object(m, `${at}.stateOnlyModules[${i}]`, problems);
      const module = pattern(o["module"], `${at}.stateOnlyModules[${i}].module`, problems);
      const beside = pattern(o["beside"], `${at}.stateOnlyModules[${i}].beside`, problems);
      return module && beside ? [{ module, beside }] : [];
    }),
  };
}

function parseExperts(raw: unknown, at: string, problems: string[]): ExpertProfile {
  const obj = object(raw, at, problems);
  const packsRaw = Array.isArray(obj["packs"]) ? obj["packs"] : [];
  return {
    grouped: obj["grouped"] === true,
    renames: renames(obj["renames"], `${at}.renames`, problems),
    packs: packsRaw.flatMap((p, i) => {
      const o = object(p, `${at}.packs[${i}]`, problems);
      const members = pattern(o["members"], `${at}.packs[${i}].members`, problems);
      const into = pattern(o["into"], `${at}.packs[${i}].into`, problems);
      const declaredShape = o["declaredShape"];
      if (declaredShape !== "concat-rows" && declaredShape !== "concat-cols") {
        problems.push(`${at}.packs[${i}].declaredShape: must be "concat-rows" or "concat-cols"`);
        return [];
      }
      return members && into ? [{ members, into, declaredShape }] : [];
    }),
  };
}

function renames(raw: unknown, at: string, problems: string[]): Rename[] {
  if (!Array.isArray(raw)) {
    problems.push(`${at}: must be a list`);
    return [];
  }
  return raw.flatMap((r, i) => {
    const o = object(r, `${at}[${i}]`, problems);
    const from = pattern(o["from"], `${at}[${i}].from`, problems);
    const to = pattern(o["to"], `${at}[${i}].to`, problems);
    const ifPresent = o["ifPresent"] === undefined ? undefined : pattern(o["ifPresent"], `${at}[${i}].ifPresent`, problems);
    return from && to ? [{ from, to, ...(ifPresent === undefined ? {} : { ifPresent }) }] : [];
  });
}

function pattern(raw: unknown, at: string, problems: string[]): Pattern | undefined {
  if (typeof raw !== "string") {
    problems.push(`${at}: must be a pattern string`);
    return undefined;
  }
  const p = compilePattern(raw);
  if ("unknown" in p) {
    problems.push(`${at}: unknown capture ${p.unknown.join(", ")}`);
    return undefined;
  }
  return p;
}

function strings(raw: unknown, at: string, problems: string[]): string[] {
  if (!Array.isArray(raw) || !raw.every((s) => typeof s === "string")) {
    problems.push(`${at}: must be a list of strings`);
    return [];
  }
  return raw as string[];
}

function object(raw: unknown, at: string, problems: string[]): Json {
  if (!isObject(raw)) {
    problems.push(`${at}: must be an object`);
    return {};
  }
  return raw;
}

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
