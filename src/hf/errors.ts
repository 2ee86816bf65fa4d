import { ProblemListError } from "../errors.js";

export class ModelConfigError extends ProblemListError {
  readonly code = "hf.bad-config";
  constructor(file: string, problems: readonly string[]) {
    super(file, problems, "invalid model config");
  }
}
