/** A dimension expression over ModelDims names: "heads*headDim", "hidden", "2*ffn", "vocab". */
export type ShapeExpr = readonly (string | number)[];

const TERM = /^([A-Za-z][A-Za-z0-9]*|[0-9]+)$/;

/** Parses "a*b*3"; returns an error message string when malformed. */
export function parseShapeExpr(raw: unknown): ShapeExpr | string {
  if (typeof raw === "number" && Number.isInteger(raw) && raw >= 0) {
    return [raw];
  }
  if (typeof raw !== "string") {
    return "must be a string like \"heads*headDim\" or an integer";
  }
  const terms = raw.split("*").map((t) => t.trim());
  const bad = terms.find((t) => !TERM.test(t));
  if (bad !== undefined) {
    return `bad term "${bad}" in "${raw}"`;
  }
  return terms.map((t) => (/^[0-9]+$/.test(t) ? Number(t) : t));
}

/** Evaluates an expression; unknown names are reported as NaN for the caller to explain. */
export function evalShapeExpr(expr: ShapeExpr, dims: Readonly<Record<string, unknown>>): number {
  let value = 1;
  for (const term of expr) {
    const v = typeof term === "number" ? term : dims[term];
    if (typeof v !== "number") {
      return Number.NaN;
    }
    value *= v;
  }
  return value;
}

export function formatShapeExpr(expr: ShapeExpr): string {
  return expr.join("*");
}
