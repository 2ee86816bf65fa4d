/**
 * The base of every error a user can act on. `code` is a stable id (tests and JSON reports
 * match it), the message is for humans and names the file, the tensor, what was expected and
 * what was found. Only cli/main.ts turns these into text and exit codes.
 */
export abstract class ConvertError extends Error {
  abstract readonly code: string;
  /** 2 for every error; verify's "found a difference" is a result, not an error. */
  readonly exitCode: number = 2;
  readonly hint?: string;

  constructor(message: string, options?: { cause?: unknown; hint?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    if (options?.hint !== undefined) {
      this.hint = options.hint;
    }
  }
}

/** A usage problem found after commander parsed the line (bad combination of flags, ...). */
export class UsageError extends ConvertError {
  readonly code = "usage";
}

/**
 * The run was interrupted by a signal; exit code 128 + signal number. `outputRemoved`: a write
 * command's partial output was removed (a command that writes nothing says only the signal).
 */
export class InterruptedError extends ConvertError {
  readonly code = "interrupted";
  override readonly exitCode: number;
  constructor(
    readonly signal: "SIGINT" | "SIGTERM",
    options?: { readonly outputRemoved?: boolean },
  ) {
    super(`interrupted by ${signal}${options?.outputRemoved === true ? "; nothing was left in the output folder" : ""}`);
    this.exitCode = signal === "SIGINT" ? 130 : 143;
  }
}

/**
 * Ends the run with an exit code after the command already reported its result (verify's 1
 * for "found a difference"). cli/main.ts prints nothing more for it.
 */
export class ExitWithCode extends Error {
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
  }
}

/** Formats a list of problems found at one place: one line for one, a bulleted list for more. */
export function problemList(location: string, heading: string, problems: readonly string[]): string {
  return problems.length === 1
    ? `${location}: ${problems[0] ?? ""}`
    : `${location}: ${heading}:\n${problems.map((p) => `  - ${p}`).join("\n")}`;
}

/** An error that reports every problem found at one place at once. */
export abstract class ProblemListError extends ConvertError {
  constructor(
    readonly location: string,
    readonly problems: readonly string[],
    heading: string,
  ) {
    super(problemList(location, heading, problems));
  }
}
