import { ConvertError } from "../errors.js";

export class ModelConfigError extends ConvertError {
  readonly code = "hf.bad-config";
  constructor(
    readonly file: string,
    readonly problems: readonly string[],
  ) {
    super(
      problems.length === 1
        ? `${file}: ${problems[0] ?? ""}`
        : `${file}: invalid model config:\n${problems.map((p) => `  - ${p}`).join("\n")}`,
    );
  }
}
