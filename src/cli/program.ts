import { availableParallelism } from "node:os";
import { Command, Option } from "commander";
import { addTargetOptions, targetFrom, type RawTargetFlags } from "./layout-options.js";
import { byteSize, expertImpl, iteration, layerSpec, outputDtype, positiveInt, workerShare } from "./parse-options.js";
import type { McoreFlags } from "./run-mcore.js";
import { oneOf, positiveNumber, runVerifyForward, type ForwardFlags } from "./run-verify-forward.js";
import type { WorkerShare } from "../engine/worker-split.js";
import type { Dtype } from "../model/tensor.js";
import { PACKAGE_VERSION } from "../package-root.js";

export const DEFAULT_JOBS = Math.max(1, Math.min(8, availableParallelism()));

const MODEL_HELP = "the mapping table (mixtral, qwen2-moe, qwen3-moe, llama, mistral) when the checkpoint has no megatron-convert.json and no --hf-config is given";

const WORKER_HELP =
  "write only worker I's share of the rank files (0 <= I < N), for N processes writing one output on a shared filesystem; " +
  "the last to finish checks completeness and publishes the checkpoint. auto: from a Slurm array or a Kubernetes indexed Job (auto/N)";

/** The commander program; each action lazily imports its command module. */
export function buildProgram(): Command {
  const program = new Command("megatron-convert")
    .description("Convert HuggingFace checkpoints (Mixtral, Qwen2-MoE, Qwen3-MoE, Llama, Mistral) to and from Megatron-Core's sharded layout, streaming, without GPUs")
    .version(PACKAGE_VERSION)
    .showHelpAfterError()
    .exitOverride();

  addTargetOptions(
    program
      .command("hf2mcore")
      .description("convert a HuggingFace folder or Hub repo into a Megatron-Core legacy checkpoint for a TP/PP/EP layout")
      .argument("<hf-dir>", "HF folder or repo id org/name[@rev] (config.json + safetensors; a repo is downloaded into the HF cache)")
      .argument("<out-dir>", "output folder (must not exist, or be empty)"),
  )
    .option("--jobs <n>", "rank files written at once (spread over threads, one per CPU at most, where there are more than 2 CPUs)", positiveInt("--jobs"), DEFAULT_JOBS)
    .option("--dry-run", "print the plan, write nothing")
    .addOption(new Option("--worker <I/N>", WORKER_HELP).argParser(workerShare(process.env)));
  addWriteOptions(program.commands.at(-1) as Command, "a checkpoint")
    .action(async (hf: string, out: string, flags: RawTargetFlags & WriteFlags & { jobs: number; dryRun?: boolean; worker?: WorkerShare }) => {
      const { runHf2Mcore } = await import("./run-convert.js");
      await runHf2Mcore(hf, out, targetFrom(flags), flags);
    });

  addTargetOptions(
    program
      .command("plan")
      .description("print the rank files, tensor counts, bytes and Megatron flags for a layout; reads only headers")
      .argument("<hf-dir>", "HF folder or repo id org/name[@rev] (a repo's shards are not downloaded: headers are read by Range requests)"),
  )
    .option("--json", "print the plan as JSON")
    .action(async (hf: string, flags: RawTargetFlags & { json?: boolean }) => {
      const { runPlan } = await import("./run-convert.js");
      await runPlan(hf, targetFrom(flags), flags);
    });

  program
    .command("mcore2hf")
    .description("convert a Megatron-Core legacy checkpoint back to HuggingFace safetensors + config.json")
    .argument("<mcore-dir>", "Megatron checkpoint folder (with latest_checkpointed_iteration.txt, or an iteration folder)")
    .argument("<out-dir>", "output folder (must not exist, or be empty)")
    .option("--hf-config <path>", "the model's HF config.json, folder or repo id org/name[@rev]: true vocab size, config fields, tokenizer files to copy")
    .option("--vocab-size <n>", "true (unpadded) vocab size, when there is no --hf-config or manifest", positiveInt("--vocab-size"))
    .option("--model <table>", MODEL_HELP)
    .addOption(new Option("--iteration <n>", 'read this iteration instead of the tracker\'s: "release" or a number').argParser(iteration))
    .addOption(new Option("--max-shard-size <size>", "largest safetensors shard, e.g. 5GB, 500MB").argParser(byteSize).default(5_000_000_000, "5GB"))
    .addOption(new Option("--dtype <dtype>", "output dtype: keep, bf16, fp16, fp32").argParser(outputDtype).default("keep"))
    .option("--tp <n>", "override the tensor parallel size read from args", positiveInt("--tp"))
    .option("--pp <n>", "override the pipeline parallel size read from args", positiveInt("--pp"))
    .option("--ep <n>", "override the expert parallel size read from args", positiveInt("--ep"))
    .addOption(new Option("--spec <spec>", "override the detected layer spec (te, local)").argParser(layerSpec))
    .addOption(new Option("--experts <impl>", "override the detected expert implementation").argParser(expertImpl));
  addWriteOptions(program.commands.at(-1) as Command, "an HF model")
    .action(async (mcore: string, out: string, flags: McoreFlags & WriteFlags & { maxShardSize: number; dtype: Dtype | "keep" }) => {
      const { runMcore2Hf } = await import("./run-mcore.js");
      await runMcore2Hf(mcore, out, flags);
    });

  addTargetOptions(
    program
      .command("reshard")
      .description("re-cut a Megatron-Core legacy checkpoint for another TP/PP/EP/VPP layout or expert implementation, without an HF copy")
      .argument("<mcore-dir>", "source Megatron checkpoint folder")
      .argument("<out-dir>", "output folder (must not exist, or be empty)"),
  )
    .option("--hf-config <path>", "the model's HF config.json, folder or repo id org/name[@rev] (for the true vocab size when the source has no manifest)")
    .option("--vocab-size <n>", "true (unpadded) vocab size", positiveInt("--vocab-size"))
    .option("--model <table>", MODEL_HELP)
    .addOption(new Option("--source-iteration <n>", "read this iteration of the source").argParser(iteration))
    .option("--jobs <n>", "rank files written at once (spread over threads, one per CPU at most, where there are more than 2 CPUs)", positiveInt("--jobs"), DEFAULT_JOBS)
    .option("--dry-run", "print the plan, write nothing")
    .addOption(new Option("--worker <I/N>", WORKER_HELP).argParser(workerShare(process.env)));
  addWriteOptions(program.commands.at(-1) as Command, "a checkpoint")
    .action(async (mcore: string, out: string, flags: RawTargetFlags & McoreFlags & WriteFlags & { sourceIteration?: number | "release"; jobs: number; dryRun?: boolean; worker?: WorkerShare }) => {
      const { runReshard } = await import("./run-mcore.js");
      await runReshard(mcore, out, targetFrom(flags), flags);
    });

  program
    .command("verify")
    .description("check a Megatron checkpoint against its HuggingFace source: exit 0 all equal, 1 a difference, 2 an error")
    .argument("<hf-dir>", "HF folder or repo id org/name[@rev] (downloaded into the HF cache)")
    .argument("<mcore-dir>", "Megatron checkpoint folder")
    .option("--report <file>", "write the JSON report to this file")
    .option("--json", "print the JSON report on stdout")
    .option("--jobs <n>", "threads that check bytes at once (this one and workers; by default no more than the CPUs)", positiveInt("--jobs"), DEFAULT_JOBS)
    .option("--forward", "instead of comparing bytes, run both models (Python + torch) and compare zero-shot losses and every layer's hidden states")
    .option("--python <path>", "--forward: Python with torch (default: MEGATRON_CONVERT_PYTHON, else /usr/bin/python3, else python3)")
    .addOption(new Option("--device <device>", "--forward: cuda or cpu (default: cuda when torch sees a GPU)").argParser(oneOf("--device", ["cuda", "cpu"] as const)))
    .option("--text <file>", "--forward: text tokenised with the HF folder's tokenizer (needs the tokenizers or transformers package)")
    .option("--tokens <file>", "--forward: token ids as JSON: a list, or a list of lists (one row each)")
    .option("--seq-len <n>", "--forward: tokens per row (default 64, at most max_position_embeddings)", positiveInt("--seq-len"))
    .option("--batch <n>", "--forward: rows (default 2)", positiveInt("--batch"))
    .addOption(new Option("--compute-dtype <dtype>", "--forward: fp32 (weights upcast per layer; default) or bf16").argParser(oneOf("--compute-dtype", ["fp32", "bf16"] as const)))
    .option("--tol <x>", "--forward: relative loss tolerance (default 1e-5 in fp32, 1e-2 in bf16)", positiveNumber("--tol"))
    .option("--hidden-tol <x>", "--forward: per-stage hidden-state tolerance (default 1e-4 in fp32, 0.1 in bf16; see README)", positiveNumber("--hidden-tol"))
    .addOption(new Option("--engine <engine>", "--forward: builtin (per-rank computation from the rank files) or megatron (Megatron-Core GPTModel via torchrun)").argParser(oneOf("--engine", ["builtin", "megatron"] as const)))
    .addOption(new Option("--hf-impl <impl>", "--forward: auto (transformers when importable and the model fits in memory), transformers, builtin").argParser(oneOf("--hf-impl", ["auto", "transformers", "builtin"] as const)))
    .option("--timeout <seconds>", "--forward: stop the Python process after this long (default 14400)", positiveInt("--timeout"))
    .option("--quiet", "--forward: no progress lines")
    .action(async (hf: string, mcore: string, flags: ForwardFlags & { forward?: boolean; jobs: number }) => {
      if (flags.forward === true) {
        await runVerifyForward(hf, mcore, flags);
        return;
      }
      const { runVerify } = await import("./run-verify.js");
      await runVerify(hf, mcore, flags);
    });

  program
    .command("inspect")
    .description("list the tensors and entries of a safetensors file or folder, a .pt file, or a Megatron checkpoint")
    .argument("<path>", "file or folder")
    .option("--json", "print JSON")
    .action(async (path: string, flags: { json?: boolean }) => {
      const { runInspect } = await import("./run-inspect.js");
      await runInspect(path, flags);
    });

  return program;
}

interface WriteFlags {
  force?: boolean;
  checkFinite?: boolean;
  json?: boolean;
  quiet?: boolean;
}

/** The flags every writing command shares. */
function addWriteOptions(cmd: Command, what: string): Command {
  return cmd
    .option("--force", `replace an existing output folder that holds only ${what} megatron-convert could have written`)
    .option("--check-finite", "fail, naming them, if any tensor holds NaN or Inf")
    .option("--json", "print a JSON summary on stdout")
    .option("--quiet", "no progress output");
}
