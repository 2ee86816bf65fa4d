import { ConvertError, ProblemListError } from "../errors.js";

/** A mapping table (mappings/*.json) or profile that is not well formed. */
export class MappingTableError extends ProblemListError {
  readonly code = "mapping.bad-table";
  constructor(file: string, problems: readonly string[]) {
    super(file, problems, "invalid mapping table");
  }
}

/** The checkpoint's tensors and the table do not fit one another; lists every offender. */
export class ResolutionError extends ConvertError {
  readonly code = "mapping.unresolved";
  constructor(
    readonly checkpoint: string,
    readonly table: string,
    readonly problems: readonly string[],
  ) {
    super(
      `${checkpoint} does not match the ${table} mapping table (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n` +
        problems.map((p) => `  - ${p}`).join("\n"),
    );
  }
}

/** No table in mappings/ handles this model. */
export class UnsupportedModelError extends ConvertError {
  readonly code = "mapping.unsupported-model";
  constructor(
    readonly configFile: string,
    readonly found: string,
    readonly supported: readonly string[],
  ) {
    super(`${configFile}: model ${found} is not supported; supported architectures: ${supported.join(", ")}`, {
      hint: "adding a model is adding a table to mappings/ (see mappings/README.md)",
    });
  }
}
