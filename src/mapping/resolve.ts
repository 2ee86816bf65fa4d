import { ResolutionError } from "./errors.js";
import { matchPattern, renderPattern, type Captures } from "./pattern.js";
import { evalShapeExpr, formatShapeExpr } from "./shape-expr.js";
import type { MappingRule, MappingTable } from "./table.js";
import type { ModelDims } from "../model/model-dims.js";
import { formatShape, type TensorSpec } from "../model/tensor.js";

/** One application of a rule: captures bound, inputs found. Names are global. */
export interface Binding {
  readonly rule: MappingRule;
  readonly captures: Captures;
  /** Global Megatron name (rule pattern rendered with the captures). */
  readonly megatron: string;
  /** Role ("" for 1:1 rules, else q/k/v, gate/up) -> the HF tensor. */
  readonly inputs: ReadonlyMap<string, TensorSpec>;
}

/**
 * Resolution is total: every tensor is used by exactly one rule (tied copies aside), every active rule matches,
 * every layer and expert the config announces is present, and every shape is what the config
 * implies. All offenders are reported at once, sorted.
 */
export function resolveTable(
  table: MappingTable,
  tensors: readonly TensorSpec[],
  dims: ModelDims,
  checkpoint: string,
): Binding[] {
  const problems: string[] = [];
  const used = new Map<string, number>();
  const bindings: Binding[] = [];
  for (const rule of table.rules) {
    if (!ruleActive(rule, dims)) {
      continue;
    }
    const found = bindRule(rule, tensors, problems);
    if (found.length === 0) {
      const wanted = [...rule.hf.values()].map((p) => renderPattern(p.source, { layer: 0, expert: 0 }));
      problems.push(`missing tensor${wanted.length > 1 ? "s" : ""} ${wanted.map((w) => `"${w}"`).join(", ")} (rule ${rule.index}, ${rule.megatron.source}, matches nothing)`);
    }
    for (const binding of found) {
      for (const t of rule.tied ? [] : binding.inputs.values()) {
        const other = used.get(t.name);
        if (other !== undefined) {
          problems.push(`tensor "${t.name}" is used by rules ${other} and ${rule.index}`);
        }
        used.set(t.name, rule.index);
      }
      checkShapes(binding, dims, problems);
    }
    checkCoverage(rule, found, dims, problems);
    bindings.push(...found);
  }
  for (const t of tensors) {
    if (!used.has(t.name)) {
      problems.push(`tensor "${t.name}" ${formatShape(t.shape)} is not mapped by any rule`);
    }
  }
  if (problems.length > 0) {
    throw new ResolutionError(checkpoint, table.name, [...new Set(problems)].sort());
  }
  return bindings;
}

export function ruleActive(rule: MappingRule, dims: ModelDims): boolean {
  if (rule.when === undefined) {
    return true;
  }
  return (dims as unknown as Record<string, unknown>)[rule.when.dim] === rule.when.equals;
}

function bindRule(rule: MappingRule, tensors: readonly TensorSpec[], problems: string[]): Binding[] {
  const groups = new Map<string, { captures: Captures; inputs: Map<string, TensorSpec> }>();
  for (const [role, pattern] of rule.hf) {
    for (const t of tensors) {
      const captures = matchPattern(pattern, t.name);
      if (captures === undefined) {
        continue;
      }
      const key = captureKey(captures);
      const group = groups.get(key) ?? { captures, inputs: new Map<string, TensorSpec>() };
      group.inputs.set(role, t);
      groups.set(key, group);
    }
  }
  const bindings: Binding[] = [];
  for (const { captures, inputs } of groups.values()) {
    const missing = [...rule.hf.keys()].filter((role) => !inputs.has(role));
    if (missing.length > 0) {
      for (const role of missing) {
        const pattern = rule.hf.get(role);
        problems.push(`missing tensor "${pattern ? renderPattern(pattern.source, captures) : role}" (input "${role}" of rule ${rule.index})`);
      }
      continue;
    }
    bindings.push({ rule, captures, megatron: renderPattern(rule.megatron.source, captures), inputs });
  }
  return bindings.sort((a, b) => compareCaptures(a.captures, b.captures));
}

function captureKey(c: Captures): string {
  return `${c.layer ?? "-"}/${c.expert ?? "-"}`;
}

function compareCaptures(a: Captures, b: Captures): number {
  return (a.layer ?? -1) - (b.layer ?? -1) || (a.expert ?? -1) - (b.expert ?? -1);
}

function checkShapes(binding: Binding, dims: ModelDims, problems: string[]): void {
  const named = dims as unknown as Record<string, unknown>;
  for (const [role, exprs] of binding.rule.shapes) {
    const t = binding.inputs.get(role);
    if (t === undefined) {
      continue;
    }
    const want = exprs.map((e) => evalShapeExpr(e, named));
    if (want.length !== t.shape.length || want.some((w, i) => w !== t.shape[i])) {
      problems.push(
        `tensor "${t.name}" has shape ${formatShape(t.shape)}; config.json implies [${exprs
          .map((e, i) => `${formatShapeExpr(e)}=${want[i]}`)
          .join(", ")}]`,
      );
    }
  }
}

function checkCoverage(rule: MappingRule, found: readonly Binding[], dims: ModelDims, problems: string[]): void {
  const seen = new Set(found.map((b) => captureKey(b.captures)));
  const layers = rule.megatron.captures.includes("layer") ? dims.layers : 1;
  const experts = rule.megatron.captures.includes("expert") ? dims.experts : 1;
  for (let layer = 0; layer < layers; layer++) {
    for (let expert = 0; expert < experts; expert++) {
      const captures: Record<string, number> = {};
      if (rule.megatron.captures.includes("layer")) {
        captures["layer"] = layer;
      }
      if (rule.megatron.captures.includes("expert")) {
        captures["expert"] = expert;
      }
      if (!seen.has(captureKey(captures)) && found.length > 0) {
        for (const p of rule.hf.values()) {
          problems.push(`missing tensor "${renderPattern(p.source, captures)}" (config.json announces it)`);
        }
      }
    }
  }
  for (const b of found) {
    if ((b.captures.layer ?? 0) >= layers || (b.captures.expert ?? 0) >= experts) {
      for (const t of b.inputs.values()) {
        problems.push(`tensor "${t.name}" is beyond the ${layers} layers / ${dims.experts} experts that config.json announces`);
      }
    }
  }
}
