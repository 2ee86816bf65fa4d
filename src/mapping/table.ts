import { MappingTableError } from "./errors.js";
import { compilePattern, type CaptureName, type Pattern } from "./pattern.js";
import { parseShapeExpr, type ShapeExpr } from "./shape-expr.js";

export const TP_SPLITS = ["replicated", "column", "row", "vocab"] as const;
export type TpSplit = (typeof TP_SPLITS)[number];

/** The closed set of combine transforms and the named inputs each takes, in order. */
export const COMBINE_INPUTS = { qkv: ["q", "k", "v"], "gate-up": ["gate", "up"] } as const;
export type Combine = keyof typeof COMBINE_INPUTS;

/** A config.json value the conversion relies on, e.g. every layer being a MoE layer. */
export interface ConfigRequirement {
  readonly key: string;
  /** Allowed values (compared as JSON); an absent key means the model's default, which must be allowed. */
  readonly allowed: readonly unknown[];
  readonly why: string;
}

export interface MappingRule {
  readonly index: number;
  readonly megatron: Pattern;
  /** Role -> HF pattern; the role is "" for 1:1 rules. */
  readonly hf: ReadonlyMap<string, Pattern>;
  readonly tp: TpSplit;
  readonly combine?: Combine;
  readonly stage?: "first" | "last";
  /** Expected HF shapes per role, as expressions over ModelDims names. */
  readonly shapes: ReadonlyMap<string, readonly ShapeExpr[]>;
  /** Rule applies only when this ModelDims flag has the given value (e.g. untied embeddings). */
  readonly when?: { readonly dim: string; readonly equals: boolean };
  /**
   * A second Megatron copy of an HF tensor another rule maps (the output layer of tied
   * embeddings): its inputs are not a use of their own, and a pipeline chunk that already holds
   * the tensor through the other rule does not get the copy.
   */
  readonly tied: boolean;
}

/** A virtual HF tensor carved out of a fused one (transformers v5 expert layout). */
export interface HfView {
  readonly name: Pattern;
  readonly of: Pattern;
  /** [index, count]: the view is part `index` of `count` equal row blocks. */
  readonly part: readonly [number, number];
}

export interface MappingTable {
  readonly name: string;
  readonly file: string;
  readonly hfArchitectures: readonly string[];
  readonly config: Readonly<Record<string, readonly string[]>>;
  /** ModelDims values when config.json lacks every listed key (the model's transformers defaults). */
  readonly configDefaults: Readonly<Record<string, number | boolean>>;
  /** config.json values the conversion relies on. */
  readonly configRequires: readonly ConfigRequirement[];
  readonly megatronArgs: Readonly<Record<string, unknown>>;
  /** Fixed config.json fields written by mcore2hf (the dims are added under their first config key). */
  readonly hfConfig: Readonly<Record<string, unknown>>;
  readonly hfViews: readonly HfView[];
  readonly rules: readonly MappingRule[];
}

type Json = Record<string, unknown>;

/** Parses and validates a table; every problem is reported with its JSON path. */
export function loadTable(json: unknown, file: string): MappingTable {
  const problems: string[] = [];
  if (!isObject(json)) {
    throw new MappingTableError(file, ["the table must be a JSON object"]);
  }
  const name = typeof json["name"] === "string" ? json["name"] : (problems.push("name: must be a string"), "");
  const archs = stringList(json["hfArchitectures"], "hfArchitectures", problems);
  const config = parseConfigKeys(json["config"], problems);
  const configDefaults = parseDefaults(json["configDefaults"], problems);
  const configRequires = asArray(json["configRequires"] ?? [], "configRequires", problems).flatMap((r, i) => parseRequirement(r, `configRequires[${i}]`, problems));
  const megatronArgs = isObject(json["megatronArgs"]) ? json["megatronArgs"] : {};
  const hfConfig = isObject(json["hfConfig"]) ? json["hfConfig"] : {};
  const hfViews = asArray(json["hfViews"] ?? [], "hfViews", problems).map((v, i) => parseView(v, `hfViews[${i}]`, problems));
  const rules = asArray(json["rules"], "rules", problems).map((r, i) => parseRule(r, i, problems));
  checkDuplicateTargets(rules, problems);
  if (problems.length > 0) {
    throw new MappingTableError(file, problems);
  }
  return {
    name,
    file,
    hfArchitectures: archs,
    config,
    configDefaults,
    configRequires,
    megatronArgs,
    hfConfig,
    hfViews: hfViews.filter((v): v is HfView => v !== undefined),
    rules: rules.filter((r): r is MappingRule => r !== undefined),
  };
}

function parseRule(raw: unknown, index: number, problems: string[]): MappingRule | undefined {
  const at = `rules[${index}]`;
  if (!isObject(raw)) {
    problems.push(`${at}: must be an object`);
    return undefined;
  }
  const before = problems.length;
  const megatron = pattern(raw["megatron"], `${at}.megatron`, problems);
  const hf = parseHf(raw["hf"], `${at}.hf`, problems);
  const tp = raw["tp"];
  if (typeof tp !== "string" || !(TP_SPLITS as readonly string[]).includes(tp)) {
    problems.push(`${at}.tp: must be one of ${TP_SPLITS.join(", ")}; found ${JSON.stringify(tp)}`);
  }
  const combine = raw["combine"];
  if (combine !== undefined) {
    checkCombine(combine, hf, at, problems);
  } else if (hf.size !== 1 || !hf.has("")) {
    problems.push(`${at}.hf: named inputs need a "combine" (one of ${Object.keys(COMBINE_INPUTS).join(", ")})`);
  }
  const stage = raw["stage"];
  if (stage !== undefined && stage !== "first" && stage !== "last") {
    problems.push(`${at}.stage: must be "first" or "last"`);
  }
  if (megatron !== undefined) {
    checkCaptures(megatron, hf, at, problems);
    const hasLayer = megatron.captures.includes("layer");
    if (hasLayer === (stage !== undefined)) {
      problems.push(`${at}: a rule needs either a {layer} capture or a "stage" (first/last), not both`);
    }
  }
  const shapes = parseShapes(raw, hf, at, problems);
  const when = parseWhen(raw["when"], `${at}.when`, problems);
  const tied = raw["tied"] ?? false;
  if (typeof tied !== "boolean") {
    problems.push(`${at}.tied: must be true or false`);
  }
  if (problems.length > before || megatron === undefined) {
    return undefined;
  }
  return {
    index,
    megatron,
    hf,
    tp: tp as TpSplit,
    ...(combine === undefined ? {} : { combine: combine as Combine }),
    ...(stage === undefined ? {} : { stage: stage as "first" | "last" }),
    shapes,
    ...(when === undefined ? {} : { when }),
    tied: tied === true,
  };
}

function parseHf(raw: unknown, at: string, problems: string[]): Map<string, Pattern> {
  const out = new Map<string, Pattern>();
  if (typeof raw === "string") {
    const p = pattern(raw, at, problems);
    if (p !== undefined) {
      out.set("", p);
    }
    return out;
  }
  if (!isObject(raw)) {
    problems.push(`${at}: must be a pattern string or an object of named patterns`);
    return out;
  }
  for (const [role, value] of Object.entries(raw)) {
    const p = pattern(value, `${at}.${role}`, problems);
    if (p !== undefined) {
      out.set(role, p);
    }
  }
  return out;
}

function checkCombine(combine: unknown, hf: Map<string, Pattern>, at: string, problems: string[]): void {
  if (typeof combine !== "string" || !(combine in COMBINE_INPUTS)) {
    problems.push(`${at}.combine: unknown combine ${JSON.stringify(combine)}; known: ${Object.keys(COMBINE_INPUTS).join(", ")}`);
    return;
  }
  const want = [...COMBINE_INPUTS[combine as Combine]].sort();
  const got = [...hf.keys()].sort();
  if (want.join(",") !== got.join(",")) {
    problems.push(`${at}.hf: combine "${combine}" takes inputs {${want.join(", ")}}; found {${got.join(", ")}}`);
  }
}

function checkCaptures(megatron: Pattern, hf: Map<string, Pattern>, at: string, problems: string[]): void {
  const want = new Set<CaptureName>(megatron.captures);
  for (const [role, p] of hf) {
    const got = new Set<CaptureName>(p.captures);
    const missing = [...want].filter((c) => !got.has(c));
    const extra = [...got].filter((c) => !want.has(c));
    const where = role === "" ? `${at}.hf` : `${at}.hf.${role}`;
    if (missing.length > 0) {
      problems.push(`${where}: lacks capture ${missing.map((c) => `{${c}}`).join(", ")} that the megatron name uses`);
    }
    if (extra.length > 0) {
      problems.push(`${where}: capture ${extra.map((c) => `{${c}}`).join(", ")} does not appear in the megatron name`);
    }
  }
}

function parseShapes(raw: Json, hf: Map<string, Pattern>, at: string, problems: string[]): Map<string, ShapeExpr[]> {
  const out = new Map<string, ShapeExpr[]>();
  const shapes = raw["shape"] !== undefined ? { "": raw["shape"] } : raw["shapes"];
  if (shapes === undefined) {
    return out;
  }
  if (!isObject(shapes)) {
    problems.push(`${at}.shapes: must map input roles to shapes`);
    return out;
  }
  for (const [role, dims] of Object.entries(shapes)) {
    if (!hf.has(role)) {
      problems.push(`${at}.shapes.${role}: no such input`);
      continue;
    }
    if (!Array.isArray(dims)) {
      problems.push(`${at}.shapes.${role}: must be a list of dimension expressions`);
      continue;
    }
    const parsed = dims.map((d) => parseShapeExpr(d));
    const bad = parsed.findIndex((p) => typeof p === "string");
    if (bad >= 0) {
      problems.push(`${at}.shapes.${role}[${bad}]: ${String(parsed[bad])}`);
      continue;
    }
    out.set(role, parsed as ShapeExpr[]);
  }
  return out;
}

function parseWhen(raw: unknown, at: string, problems: string[]): MappingRule["when"] {
  if (raw === undefined) {
    return undefined;
  }
  if (!isObject(raw) || typeof raw["dim"] !== "string" || typeof raw["equals"] !== "boolean") {
    problems.push(`${at}: must be {"dim": <ModelDims flag>, "equals": true|false}`);
    return undefined;
  }
  return { dim: raw["dim"], equals: raw["equals"] };
}

function parseView(raw: unknown, at: string, problems: string[]): HfView | undefined {
  if (!isObject(raw)) {
    problems.push(`${at}: must be an object`);
    return undefined;
  }
  const name = pattern(raw["name"], `${at}.name`, problems);
  const of = pattern(raw["of"], `${at}.of`, problems);
  const part = raw["part"] ?? [0, 1];
  const valid =
    Array.isArray(part) &&
    part.length === 2 &&
    part.every((n) => Number.isInteger(n)) &&
    (part[0] as number) >= 0 &&
    (part[0] as number) < (part[1] as number);
  if (!valid) {
    problems.push(`${at}.part: must be [index, count] with 0 <= index < count`);
  }
  if (name === undefined || of === undefined || !valid) {
    return undefined;
  }
  return { name, of, part: [part[0] as number, part[1] as number] };
}

/** Two rules may produce one name only when their `when` conditions exclude each other. */
function checkDuplicateTargets(rules: readonly (MappingRule | undefined)[], problems: string[]): void {
  const seen = new Map<string, MappingRule[]>();
  for (const rule of rules) {
    if (rule === undefined) {
      continue;
    }
    const earlier = seen.get(rule.megatron.source) ?? [];
    const clash = earlier.find((other) => !exclusive(other, rule));
    if (clash !== undefined) {
      problems.push(`rules[${rule.index}].megatron: "${rule.megatron.source}" is already produced by rules[${clash.index}] (give both a "when" on one flag with opposite values)`);
    }
    seen.set(rule.megatron.source, [...earlier, rule]);
  }
}

function exclusive(a: MappingRule, b: MappingRule): boolean {
  return a.when !== undefined && b.when !== undefined && a.when.dim === b.when.dim && a.when.equals !== b.when.equals;
}

function parseDefaults(raw: unknown, problems: string[]): Record<string, number | boolean> {
  if (raw === undefined) {
    return {};
  }
  if (!isObject(raw) || !Object.values(raw).every((v) => typeof v === "number" || typeof v === "boolean")) {
    problems.push("configDefaults: must map ModelDims names to numbers or booleans");
    return {};
  }
  return raw as Record<string, number | boolean>;
}

function parseRequirement(raw: unknown, at: string, problems: string[]): ConfigRequirement[] {
  if (!isObject(raw) || typeof raw["key"] !== "string" || !Array.isArray(raw["allowed"]) || typeof raw["why"] !== "string") {
    problems.push(`${at}: must be {"key": <config.json key>, "allowed": [values], "why": <reason>}`);
    return [];
  }
  return [{ key: raw["key"], allowed: raw["allowed"] as unknown[], why: raw["why"] }];
}

function parseConfigKeys(raw: unknown, problems: string[]): Record<string, string[]> {
  if (raw === undefined) {
    return {};
  }
  if (!isObject(raw)) {
    problems.push("config: must map ModelDims names to lists of config.json keys");
    return {};
  }
  const out: Record<string, string[]> = {};
  for (const [dim, keys] of Object.entries(raw)) {
    out[dim] = stringList(keys, `config.${dim}`, problems);
  }
  return out;
}

function pattern(raw: unknown, at: string, problems: string[]): Pattern | undefined {
  if (typeof raw !== "string" || raw === "") {
    problems.push(`${at}: must be a non-empty pattern string`);
    return undefined;
  }
  const compiled = compilePattern(raw);
  if ("unknown" in compiled) {
    problems.push(`${at}: unknown capture ${compiled.unknown.map((u) => `{${u}}`).join(", ")} (known: {layer}, {expert})`);
    return undefined;
  }
  return compiled;
}

function stringList(raw: unknown, at: string, problems: string[]): string[] {
  if (!Array.isArray(raw) || !raw.every((s) => typeof s === "string")) {
    problems.push(`${at}: must be a list of strings`);
    return [];
  }
  return raw as string[];
}

function asArray(raw: unknown, at: string, problems: string[]): unknown[] {
  if (!Array.isArray(raw)) {
    problems.push(`${at}: must be a list`);
    return [];
  }
  return raw;
}

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
