import { ConvertError } from "../errors.js";

export class MegatronCheckpointError extends ConvertError {
  readonly code = "megatron.bad-checkpoint";
  constructor(
    readonly location: string,
    readonly problems: readonly string[],
  ) {
    super(
      problems.length === 1
        ? `${location}: ${problems[0] ?? ""}`
        : `${location}: not a usable Megatron checkpoint:\n${problems.map((p) => `  - ${p}`).join("\n")}`,
    );
  }
}
