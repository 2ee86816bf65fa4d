import { ProblemListError } from "../errors.js";

export class MegatronCheckpointError extends ProblemListError {
  readonly code = "megatron.bad-checkpoint";
  constructor(location: string, problems: readonly string[]) {
    super(location, problems, "not a usable Megatron checkpoint");
  }
}
