import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { MeasuredRunError } from "./measure.js";
import { assertEvictable, PageCacheError } from "./page-cache.js";
import { findPythonWithTorch } from "./python.js";
import { CACHE_MODES, type BenchResults, type CacheMode, type SizeResult } from "./results.js";
import { fmtBytes, runSize } from "./suite.js";
import { chooseDims, MIXTRAL_EXPERTS } from "./synthetic.js";
import { formatTables, targetChecks } from "./table.js";
import { byteSize, positiveInt } from "../cli/parse-options.js";

/**
 * `npm run bench`: issue 6's measurements on synthetic Mixtral checkpoints. See README "Benchmark".
 */
interface Flags {
  size: number;
  sizes?: number[];
  dir?: string;
  keep?: boolean;
  out?: string;
  jobs?: number;
  python?: string;
  torch: boolean;
  torchLoadCheck?: boolean;
  verifyTorchOutput?: boolean;
  failOnMiss?: boolean;
  quiet?: boolean;
  repeat: number;
  cache: CacheMode;
  experts: number;
}

/** hf2mcore runs at EP=4 and reshard at EP=2, so the expert count must split 4 ways. */
function expertCount(value: string): number {
  const n = positiveInt("--experts")(value);
  if (n % 4 !== 0) {
    throw new InvalidArgumentError(`--experts must be a multiple of 4 (the bench converts at EP=4); got ${n}`);
  }
  return n;
}

const FSYNCED = "outputs are fsynced by the tools, the copy baseline and the torch baseline alike";
const CACHE_METHOD: Record<CacheMode, string> = {
  warm: `warm: the source was just written and copied once (unmeasured warm-up) and stays in the page cache; ${FSYNCED}`,
  cold: `cold: before each measured step (baselines and commands alike) every file of the model's folder is dropped from the page cache (sync -f, then GNU dd iflag=nocache: posix_fadvise DONTNEED), so reads come from the disk; ${FSYNCED}`,
};

const METHOD = {
  peakRss:
    "getrusage(RUSAGE_SELF).ru_maxrss of the process that does the work, read at its exit: Node commands run in a child process through dist/bench/probe.js (which imports the CLI in-process), the Python ones call resource.getrusage themselves",
  wallTime: "from spawning the child process to its exit, Node or Python start-up included",
  ratio: "(seconds / bytes) of the command divided by (seconds / bytes) of its baseline, the mean of one run before and one after; bytes written for copy-like work, bytes read for verify and the read baseline; with --repeat, the round with the median ratio (roundRatios lists every round)",
};

function parseFlags(argv: readonly string[]): Flags {
  const program = new Command("bench")
    .description("measure megatron-convert against copy/read baselines and a torch converter on synthetic Mixtral checkpoints")
    .addOption(new Option("--size <size>", "the largest model, e.g. 4GiB (sizes run: size/4 and size)").argParser(byteSize).default(2 ** 31, "2GiB"))
    .option("--sizes <list>", "model sizes to run instead, e.g. 1GiB,4GiB (each runs every measurement)", (v: string) => v.split(",").map(byteSize))
    .option("--experts <n>", "experts per layer (a multiple of 4); more make the same size out of more, smaller tensors, as fine-grained MoE models are", expertCount, MIXTRAL_EXPERTS)
    .option("--dir <path>", "work folder (default: a new folder in the system temp dir)")
    .option("--keep", "keep the generated models and outputs")
    .option("--out <file>", "JSON results (default: bench-results.json in the work folder)")
    .option("--jobs <n>", "passed to hf2mcore, reshard and verify (default: theirs)", positiveInt("--jobs"))
    .option("--python <path>", "python3 with torch for the torch baseline (default: MEGATRON_CONVERT_PYTHON, /usr/bin/python3, python3)")
    .option("--no-torch", "skip the torch baseline and load check")
    .option("--torch-load-check", "torch.load the TP1 rank file (zip64 when over 4 GiB) and compare it with the plan")
    .option("--verify-torch-output", "check the torch baseline's rank files with `verify` (they must equal ours)")
    .option("--repeat <n>", "run every measurement n times; each command reports its median round", positiveInt("--repeat"), 1)
    .addOption(new Option("--cache <mode>", "warm: reads come from the page cache; cold: drop the model's files from it before each step, so reads come from the disk").choices(CACHE_MODES).default("warm"))
    .option("--fail-on-miss", "exit 1 when a target is missed")
    .option("--quiet", "no progress lines on stderr")
    .exitOverride();
  program.parse([...argv], { from: "user" });
  return program.opts<Flags>();
}

async function main(argv: readonly string[]): Promise<number> {
  const flags = parseFlags(argv);
  const sizes = [...new Set(flags.sizes ?? [Math.floor(flags.size / 4), flags.size])].sort((a, b) => a - b);
  const workDir = flags.dir === undefined ? await mkdtemp(join(tmpdir(), "megatron-convert-bench-")) : resolve(flags.dir);
  await mkdir(workDir, { recursive: true });
  if (flags.cache === "cold") {
    await assertEvictable(workDir);
  }
  const out = resolve(flags.out ?? join(workDir, "bench-results.json"));
  const python = flags.torch ? findPythonWithTorch(flags.python) : undefined;
  const log = (line: string): void => {
    if (flags.quiet !== true) {
      process.stderr.write(`bench: ${line}\n`);
    }
  };
  log(`work folder ${workDir}; ${python === undefined ? "no torch baseline (no python3 with torch)" : `torch ${python.torch} from ${python.python}`}`);
  const startedAt = new Date().toISOString();
  const loadStart = loadavg()[0] ?? 0;
  if (loadStart > cpus().length / 2) {
    log(`warning: load average ${loadStart.toFixed(1)} on ${cpus().length} CPUs; other work will skew the numbers`);
  }
  const dims = chooseDims(sizes, flags.experts);
  const results: SizeResult[] = [];
  for (const [i, size] of sizes.entries()) {
    const d = dims[i];
    if (d === undefined) {
      continue;
    }
    const root = join(workDir, `model-${size}`);
    const sizeLog = (line: string): void => log(`[${fmtBytes(size)}] ${line}`);
    try {
      results.push(await runSize(size, d, { root, jobs: flags.jobs, python, torchLoadCheck: flags.torchLoadCheck === true, verifyTorchOutput: flags.verifyTorchOutput === true, keep: flags.keep === true, repeat: flags.repeat, cache: flags.cache, log: sizeLog }));
    } finally {
      if (flags.keep !== true) {
        await rm(root, { recursive: true, force: true });
      }
    }
  }
  const checks = targetChecks(results);
  const cpu = cpus();
  const report: BenchResults = {
    schemaVersion: 1,
    startedAt,
    machine: {
      cpus: cpu.length,
      cpuModel: cpu[0]?.model ?? "unknown",
      memoryBytes: totalmem(),
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      loadAverage: { start: loadStart, end: loadavg()[0] ?? 0 },
    },
    options: { sizes, experts: flags.experts, jobs: flags.jobs ?? null, repeat: flags.repeat, cache: flags.cache, workDir },
    method: { ...METHOD, cache: CACHE_METHOD[flags.cache] },
    python: python ?? null,
    sizes: results,
    targets: checks,
  };
  await writeFile(out, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`page cache: ${CACHE_METHOD[flags.cache]}\n`);
  process.stdout.write(formatTables(results, checks));
  process.stdout.write(`results: ${out}\n`);
  return flags.failOnMiss === true && checks.some((c) => !c.met) ? 1 : 0;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  if (error instanceof CommanderError) {
    process.exitCode = error.exitCode === 0 ? 0 : 2;
  } else {
    process.stderr.write(`bench: ${error instanceof MeasuredRunError || error instanceof PageCacheError ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 2;
  }
}
