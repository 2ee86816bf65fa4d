import { renderPattern } from "./pattern.js";
import { ruleActive } from "./resolve.js";
import { evalShapeExpr } from "./shape-expr.js";
import type { MappingTable } from "./table.js";
import type { ModelDims } from "../model/model-dims.js";
import type { Dtype, TensorSpec } from "../model/tensor.js";

/**
 * The HF tensors a table implies for a model, with shapes from the rules' shape expressions:
 * what mcore2hf writes and what reshard reasons about when there is no HF folder. Tied copies
 * add no tensor of their own.
 */
export function hfTensorsOf(table: MappingTable, dims: ModelDims, dtype: Dtype): TensorSpec[] {
  const named = dims as unknown as Record<string, unknown>;
  const out: TensorSpec[] = [];
  const rules = table.rules.filter((r) => ruleActive(r, dims) && !r.tied);
  const layerRules = rules.filter((r) => r.megatron.captures.includes("layer"));
  const emit = (rule: MappingTable["rules"][number], captures: { layer?: number; expert?: number }) => {
    for (const [role, pattern] of rule.hf) {
      const exprs = rule.shapes.get(role);
      if (exprs === undefined) {
        throw new Error(`${table.file}: rules[${rule.index}] needs "shape(s)" for input "${role || "(single)"}" to write HF tensors`);
      }
      out.push({ name: renderPattern(pattern.source, captures), dtype, shape: exprs.map((e) => evalShapeExpr(e, named)) });
    }
  };
  for (const rule of rules.filter((r) => r.stage === "first")) {
    emit(rule, {});
  }
  for (let layer = 0; layer < dims.layers; layer++) {
    for (const rule of layerRules) {
      const experts = rule.megatron.captures.includes("expert") ? dims.experts : 0;
      if (experts === 0) {
        emit(rule, { layer });
      }
      for (let expert = 0; expert < experts; expert++) {
        emit(rule, { layer, expert });
      }
    }
  }
  for (const rule of rules.filter((r) => r.stage === "last")) {
    emit(rule, {});
  }
  return out;
}
