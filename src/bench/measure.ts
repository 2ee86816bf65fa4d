import { spawn } from "node:child_process";
import { readFile, rm } from "node:fs/promises";
import { fileURLToPath } from "node:url";

/** What one measured child process did: wall time seen from here, the rest from its own getrusage. */
export interface Measured {
  readonly seconds: number;
  readonly peakRssBytes: number;
  readonly userSeconds: number;
  readonly systemSeconds: number;
  /** Everything the child wrote in its result file (scripts may add their own fields). */
  readonly record: Readonly<Record<string, unknown>>;
  /** The end of what it printed (stdout and stderr together, the last 16 KiB). */
  readonly output: string;
}

export class MeasuredRunError extends Error {
  constructor(
    readonly label: string,
    readonly exitCode: number | null,
    readonly signal: string | null,
    readonly stderrTail: string,
  ) {
    super(`${label}: exited with ${signal === null ? `code ${exitCode}` : `signal ${signal}`}\n${stderrTail}`);
    this.name = "MeasuredRunError";
  }
}

const PROBE = fileURLToPath(new URL("./probe.js", import.meta.url));
/** Keep the last lines of a failing child's output for the error. */
const TAIL_LINES = 20;

/**
 * Runs a Node script in its own process through probe.js, so its peak RSS is the kernel's
 * ru_maxrss of the process that does the work.
 */
export async function measureNode(label: string, script: string, args: readonly string[], resultFile: string): Promise<Measured> {
  return measure(label, process.execPath, [PROBE, resultFile, script, ...args], resultFile);
}

/**
 * Runs a Python script that writes the same result JSON itself (resource.getrusage at exit);
 * the result file is its first argument.
 */
export async function measurePython(label: string, python: string, script: string, args: readonly string[], resultFile: string): Promise<Measured> {
  return measure(label, python, [script, resultFile, ...args], resultFile);
}

async function measure(label: string, command: string, args: readonly string[], resultFile: string): Promise<Measured> {
  await rm(resultFile, { force: true });
  const started = performance.now();
  const { code, signal, output } = await run(command, args);
  const seconds = (performance.now() - started) / 1000;
  const tail = output.split("\n").slice(-TAIL_LINES).join("\n");
  if (code !== 0) {
    throw new MeasuredRunError(label, code, signal, tail);
  }
  const text = await readFile(resultFile, "utf8").catch(() => undefined);
  const record = text === undefined ? {} : (JSON.parse(text) as Record<string, unknown>);
  const maxRssKiB = record["maxRssKiB"];
  if (typeof maxRssKiB !== "number" || maxRssKiB <= 0) {
    throw new MeasuredRunError(label, code, signal, `no resource usage in ${resultFile}\n${tail}`);
  }
  return { seconds, peakRssBytes: maxRssKiB * 1024, userSeconds: numberIn(record, "userSeconds"), systemSeconds: numberIn(record, "systemSeconds"), record, output };
}

function numberIn(record: Readonly<Record<string, unknown>>, key: string): number {
  const value = record[key];
  return typeof value === "number" ? value : 0;
}

function run(command: string, args: readonly string[]): Promise<{ code: number | null; signal: string | null; output: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, [...args], { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const keep = (chunk: Buffer): void => {
      output = (output + chunk.toString("utf8")).slice(-16_384);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    child.on("error", reject);
    child.on("close", (code, signal) => resolvePromise({ code, signal, output }));
  });
}
