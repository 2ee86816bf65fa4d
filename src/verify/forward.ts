import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { $, type ProcessOutput, type ProcessPromise } from "zx";
import type { ForwardReport, PythonSource } from "./forward-report.js";
import { ConvertError, InterruptedError } from "../errors.js";
import { PACKAGE_ROOT } from "../package-root.js";

/** The verifier ships as source beside this module's source (package.json "files": src/verify/python). */
export const FORWARD_SCRIPT = join(PACKAGE_ROOT, "src", "verify", "python", "forward_verify.py");
export const DEFAULT_PYTHONS: readonly string[] = ["/usr/bin/python3", "python3"];
export const DEFAULT_TIMEOUT_MS = 4 * 3600 * 1000;
const STDERR_TAIL_LINES = 20;
/** forward_verify.py's exit status for "the result file holds a structured error". */
const STRUCTURED_ERROR_EXIT = 3;

/** No Python that can import torch. */
export class NoPythonError extends ConvertError {
  readonly code = "verify.no-python";
  constructor(readonly tried: readonly { python: string; problem: string }[]) {
    super(`no Python with torch for verify --forward; tried ${tried.map((t) => `${t.python} (${t.problem})`).join(", ")}`, {
      hint: "install torch (apt-get install python3-torch, or pip install torch) or name a Python that has it with --python or MEGATRON_CONVERT_PYTHON",
    });
  }
}

/** The verifier process crashed, was killed, or wrote no usable result. */
export class PythonFailedError extends ConvertError {
  readonly code = "verify.python-failed";
  constructor(
    readonly python: string,
    readonly processExitCode: number | null,
    readonly signal: string | null,
    /** The last 20 lines of its stderr. */
    readonly stderrTail: readonly string[],
    what: string,
  ) {
    super(`${python} ${FORWARD_SCRIPT} ${what}${stderrTail.length > 0 ? `; its stderr ended with:\n${stderrTail.join("\n")}` : ""}`);
  }
}

export class PythonTimeoutError extends ConvertError {
  readonly code = "verify.python-timeout";
  constructor(readonly timeoutMs: number) {
    super(`verify --forward took longer than ${Math.round(timeoutMs / 1000)} s and was stopped`, { hint: "raise --timeout, or lower --seq-len / --batch" });
  }
}

/** A problem the verifier found and described (bad layout in args, missing tensor, no tokenizer ...): its code. */
export class ForwardCheckError extends ConvertError {
  constructor(
    readonly code: string,
    message: string,
    hint?: string,
  ) {
    super(message, hint === undefined ? undefined : { hint });
  }
}

export interface ForwardOptions {
  readonly hf: string;
  readonly mcore: string;
  /** Else MEGATRON_CONVERT_PYTHON, else the first of DEFAULT_PYTHONS that has torch. */
  readonly python?: string;
  /** Default: cuda when torch sees a GPU, else cpu. */
  readonly device?: "cuda" | "cpu";
  readonly tokens?: string;
  readonly text?: string;
  readonly seqLen?: number;
  readonly batch?: number;
  readonly computeDtype?: "fp32" | "bf16";
  readonly tol?: number;
  readonly hiddenTol?: number;
  readonly engine?: "builtin" | "megatron";
  readonly hfImpl?: "auto" | "transformers" | "builtin";
  readonly timeoutMs?: number;
  /** Progress lines from the verifier ("hf side", "megatron layer 3" ...). */
  readonly onProgress?: (line: string) => void;
  readonly env?: NodeJS.ProcessEnv;
}

export interface PythonChoice {
  readonly path: string;
  readonly source: PythonSource;
}

/**
 * --python, else MEGATRON_CONVERT_PYTHON (each used as given, no fallback), else the first of
 * /usr/bin/python3, python3 where `importlib.util.find_spec("torch")` succeeds (a cheap probe: the
 * verifier itself reports a torch that is present but fails to import, as verify.no-torch).
 */
export async function findPython(explicit?: string, env: NodeJS.ProcessEnv = process.env): Promise<PythonChoice> {
  const fromEnv = env["MEGATRON_CONVERT_PYTHON"];
  const choices: PythonChoice[] =
    explicit !== undefined
      ? [{ path: explicit, source: "--python" }]
      : fromEnv !== undefined && fromEnv !== ""
        ? [{ path: fromEnv, source: "MEGATRON_CONVERT_PYTHON" }]
        : DEFAULT_PYTHONS.map((path) => ({ path, source: "default" as const }));
  const tried: { python: string; problem: string }[] = [];
  for (const choice of choices) {
    const out = await $({ quiet: true, nothrow: true, prefix: "", postfix: "", env, timeout: 60_000 })`exec ${choice.path} -c ${PROBE}`;
    if (out.exitCode === 0) {
      return choice;
    }
    tried.push({ python: `${choice.path} [${choice.source}]`, problem: out.exitCode === 4 ? "no torch" : out.exitCode === 127 ? "not found" : `does not run: exit ${out.exitCode ?? out.signal}` });
  }
  throw new NoPythonError(tried);
}

const PROBE = "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('torch') else 4)";

/** Runs the forward check of one Megatron checkpoint against its HF source. */
export async function verifyForward(options: ForwardOptions): Promise<ForwardReport> {
  const [first] = await verifyForwardMany(options, [options.mcore]);
  if (first instanceof ConvertError || first === undefined) {
    throw first ?? new ForwardCheckError("verify.python-failed", "the verifier returned no result");
  }
  return first;
}

/** One Python process, the HF side computed once, several checkpoints compared (tests use it). */
export async function verifyForwardMany(options: ForwardOptions, mcores: readonly string[]): Promise<(ForwardReport | ForwardCheckError)[]> {
  const started = performance.now();
  const python = await findPython(options.python, options.env ?? process.env);
  const dir = await mkdtemp(join(tmpdir(), "megatron-convert-forward-"));
  try {
    const resultPath = join(dir, "result.json");
    const output = await runVerifier(python.path, [...scriptArgs(options, mcores), "--result", resultPath], options);
    const raw = await readFile(resultPath, "utf8").catch(() => undefined);
    const parsed = raw === undefined ? undefined : parseResult(raw);
    if (output.exitCode === STRUCTURED_ERROR_EXIT && parsed?.error !== undefined) {
      throw new ForwardCheckError(parsed.error.code, parsed.error.message, parsed.error.hint);
    }
    if (output.exitCode !== 0 || output.signal !== null || parsed?.results === undefined) {
      const what = output.signal !== null ? `was killed by ${output.signal}` : output.exitCode !== 0 ? `exited with status ${output.exitCode}` : "wrote no readable result";
      throw new PythonFailedError(python.path, output.exitCode, output.signal, tail(output.stderr), what);
    }
    const seconds = (performance.now() - started) / 1000;
    return parsed.results.map((r) => (r.error !== undefined ? new ForwardCheckError(r.error.code, `${r.mcore}: ${r.error.message}`, r.error.hint) : toReport(options, python, parsed, r, seconds)));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function scriptArgs(o: ForwardOptions, mcores: readonly string[]): string[] {
  const args = ["--hf", o.hf, ...mcores.flatMap((m) => ["--mcore", m])];
  const add = (flag: string, value: string | number | undefined): void => {
    if (value !== undefined) {
      args.push(flag, String(value));
    }
  };
  add("--device", o.device);
  add("--tokens", o.tokens);
  add("--text", o.text);
  add("--seq-len", o.seqLen);
  add("--batch", o.batch);
  add("--compute-dtype", o.computeDtype);
  add("--tol", o.tol);
  add("--hidden-tol", o.hiddenTol);
  add("--engine", o.engine);
  add("--hf-impl", o.hfImpl);
  return args;
}

/** Spawns the verifier through zx (exec, so the child is Python itself); relays SIGINT/SIGTERM; bounded by a timeout. */
async function runVerifier(python: string, args: readonly string[], options: ForwardOptions): Promise<ProcessOutput> {
  const env = { ...(options.env ?? process.env), PYTHONUNBUFFERED: "1", PYTHONDONTWRITEBYTECODE: "1" };
  const child: ProcessPromise = $({ quiet: true, nothrow: true, prefix: "", postfix: "", env })`exec ${python} ${FORWARD_SCRIPT} ${args}`;
  let relayed: "SIGINT" | "SIGTERM" | undefined;
  const relay = (signal: "SIGINT" | "SIGTERM") => () => {
    relayed = signal;
    child.child?.kill(signal);
  };
  const onInt = relay("SIGINT");
  const onTerm = relay("SIGTERM");
  // Prepended: cli/main.ts's own handler exits the process, so the child must hear first.
  process.prependListener("SIGINT", onInt);
  process.prependListener("SIGTERM", onTerm);
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.child?.kill("SIGTERM");
    setTimeout(() => child.child?.kill("SIGKILL"), 5000).unref();
  }, timeoutMs);
  if (options.onProgress !== undefined) {
    const report = options.onProgress;
    let pending = "";
    child.stderr.on("data", (chunk: Buffer) => {
      const lines = (pending + chunk.toString("utf8")).split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines.filter((l) => l.startsWith("progress: "))) {
        report(line.slice("progress: ".length));
      }
    });
  }
  try {
    const output = await child;
    if (timedOut) {
      throw new PythonTimeoutError(timeoutMs);
    }
    if (relayed !== undefined && output.signal === relayed) {
      throw new InterruptedError(relayed);
    }
    return output;
  } finally {
    clearTimeout(timer);
    process.removeListener("SIGINT", onInt);
    process.removeListener("SIGTERM", onTerm);
  }
}

function parseResult(raw: string): RawResult | undefined {
  try {
    return JSON.parse(raw) as RawResult;
  } catch {
    return undefined; // reported as "wrote no result", with the stderr tail
  }
}

function tail(stderr: string): string[] {
  return stderr.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("progress: ")).slice(-STDERR_TAIL_LINES);
}

interface RawError {
  readonly code: string;
  readonly message: string;
  readonly hint?: string;
}

type RawCheck = Pick<ForwardReport, "ok" | "losses" | "stages" | "firstDifference" | "unexercisedExperts"> & {
  readonly mcore: string;
  readonly error?: RawError;
  readonly megatron: ForwardReport["megatronSide"];
};

interface RawResult {
  readonly error?: RawError;
  readonly results?: readonly RawCheck[];
  readonly hf: ForwardReport["hfSide"];
  readonly input: ForwardReport["input"];
  readonly device: string;
  readonly computeDtype: ForwardReport["computeDtype"];
  readonly tolerance: ForwardReport["tolerance"];
  readonly peakMemory: ForwardReport["peakMemory"];
  readonly versions: { readonly python: string; readonly torch: string };
}

function toReport(options: ForwardOptions, python: PythonChoice, all: RawResult, r: RawCheck, seconds: number): ForwardReport {
  return {
    schemaVersion: 1,
    mode: "forward",
    ok: r.ok,
    hf: options.hf,
    mcore: r.mcore,
    losses: r.losses,
    tolerance: all.tolerance,
    stages: r.stages,
    firstDifference: r.firstDifference,
    unexercisedExperts: r.unexercisedExperts,
    hfSide: all.hf,
    megatronSide: r.megatron,
    input: all.input,
    device: all.device,
    computeDtype: all.computeDtype,
    peakMemory: all.peakMemory,
    python: { path: python.path, source: python.source, version: all.versions.python, torch: all.versions.torch },
    seconds,
  };
}
