import { CommanderError } from "commander";
import { buildProgram } from "./program.js";
import { writeErr } from "./print.js";
import { keepOldGenerationClose, keepYoungGenerationSmall } from "./heap-settings.js";
import { hasActiveStaging, removeActiveStaging } from "../engine/atomic-dir.js";
import { releaseHeldLocks } from "../engine/output-lock.js";
import { stopAllWorkerThreads } from "../engine/worker-pool.js";
import { ConvertError, ExitWithCode, InterruptedError } from "../errors.js";

/** The one place that turns errors into text and exit codes. */
async function main(argv: readonly string[]): Promise<void> {
  keepYoungGenerationSmall();
  keepOldGenerationClose();
  const program = buildProgram();
  const stop = (signal: "SIGINT" | "SIGTERM") => () => {
    const error = new InterruptedError(signal, { outputRemoved: hasActiveStaging() });
    // threads that write rank files stop first, so that none creates a file after the removal
    stopAllWorkerThreads();
    cleanUp();
    // Writes already handed to the thread pool may land after the first removal: remove again
    // once they have, then exit.
    setTimeout(() => {
      cleanUp();
      writeErr(`megatron-convert: ${error.message}`);
      process.exit(signal === "SIGINT" ? 130 : 143);
    }, 100);
  };
  // `megatron-convert plan ... | head` closes our stdout early: that is not an error.
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") {
      process.exit(typeof process.exitCode === "number" ? process.exitCode : 0);
    }
    throw error;
  });
  process.once("SIGINT", stop("SIGINT"));
  process.once("SIGTERM", stop("SIGTERM"));
  try {
    await program.parseAsync([...argv]);
  } catch (error) {
    process.exitCode = report(error);
  }
}

/** Removes the partial output and our lock; never throws (a rerun removes what is left). */
function cleanUp(): void {
  try {
    releaseHeldLocks();
  } catch {
    // the rerun takes over a lock whose process is gone
  }
  try {
    removeActiveStaging();
  } catch (error) {
    writeErr(`megatron-convert: could not remove the partial output yet: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function report(error: unknown): number {
  if (error instanceof ExitWithCode) {
    return error.exitCode;
  }
  if (error instanceof CommanderError) {
    // --help and --version exit 0; every usage error exits 2 (commander's default is 1).
    return error.exitCode === 0 ? 0 : 2;
  }
  if (error instanceof ConvertError) {
    writeErr(`megatron-convert: error [${error.code}]: ${error.message}`);
    if (error.hint !== undefined) {
      writeErr(`hint: ${error.hint}`);
    }
    return error.exitCode;
  }
  writeErr("megatron-convert: internal error (a bug; please report it with the command line and this trace):");
  writeErr(error instanceof Error ? (error.stack ?? error.message) : String(error));
  return 2;
}

await main(process.argv);
