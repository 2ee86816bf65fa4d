import { ConvertError } from "../errors.js";

/** A parallel layout that cannot hold this model; `rule` names the violated constraint. */
export class LayoutError extends ConvertError {
  readonly code = "layout.invalid";
  constructor(readonly problems: readonly string[]) {
    super(
      problems.length === 1
        ? `invalid parallel layout: ${problems[0] ?? ""}`
        : `invalid parallel layout:\n${problems.map((p) => `  - ${p}`).join("\n")}`,
    );
  }
}
