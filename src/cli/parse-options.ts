import { InvalidArgumentError } from "commander";
import { EXPERT_IMPLS, LAYER_SPECS, type ExpertImpl, type LayerSpec } from "../mapping/profiles.js";
import type { WorkerShare } from "../engine/worker-split.js";
import type { Dtype } from "../model/tensor.js";

export function positiveInt(flag: string): (value: string) => number {
  return (value) => {
    if (!/^[0-9]+$/.test(value) || Number(value) < 1) {
      throw new InvalidArgumentError(`${flag} must be a positive integer; got "${value}"`);
    }
    return Number(value);
  };
}

export function iteration(value: string): number | "release" {
  if (value === "release") {
    return "release";
  }
  if (!/^[0-9]+$/.test(value) || Number(value) < 1) {
    throw new InvalidArgumentError(
      `--iteration must be "release" or an iteration >= 1 (Megatron up to core 0.15 rejects a tracker holding 0); got "${value}"`,
    );
  }
  return Number(value);
}

export function layerSpec(value: string): LayerSpec {
  if (!(LAYER_SPECS as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`--spec must be one of ${LAYER_SPECS.join(", ")}; got "${value}"`);
  }
  return value as LayerSpec;
}

export function expertImpl(value: string): ExpertImpl {
  if (!(EXPERT_IMPLS as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`--experts must be one of ${EXPERT_IMPLS.join(", ")}; got "${value}"`);
  }
  return value as ExpertImpl;
}

const DTYPES: Readonly<Record<string, Dtype | undefined>> = { keep: undefined, bf16: "BF16", fp16: "F16", fp32: "F32" };

export function outputDtype(value: string): Dtype | "keep" {
  if (!(value in DTYPES)) {
    throw new InvalidArgumentError(`--dtype must be one of ${Object.keys(DTYPES).join(", ")}; got "${value}"`);
  }
  return DTYPES[value] ?? "keep";
}

/** Bytes with an optional unit: 5GB, 500MB, 1GiB, 1048576. */
export function byteSize(value: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?$/i.exec(value.trim());
  if (m === null) {
    throw new InvalidArgumentError(`expected a size like 5GB or 500MB; got "${value}"`);
  }
  const units: Record<string, number> = { b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40 };
  return Math.floor(Number(m[1]) * (units[(m[2] ?? "b").toLowerCase()] ?? 1));
}

/**
 * --worker I/N (0 <= I < N), or `auto` / `auto/N` from the scheduler's environment: a Slurm
 * array (SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT) or a Kubernetes
 * indexed Job (JOB_COMPLETION_INDEX, with N from `auto/N` or MEGATRON_CONVERT_WORKERS).
 */
export function workerShare(env: Readonly<Record<string, string | undefined>>): (value: string) => WorkerShare {
  return (value) => {
    const explicit = /^([0-9]+)\/([0-9]+)$/.exec(value);
    if (explicit !== null) {
      return checkedShare(Number(explicit[1]), Number(explicit[2]), value);
    }
    const auto = /^auto(?:\/([0-9]+))?$/.exec(value);
    if (auto === null) {
      throw new InvalidArgumentError(`--worker must be I/N (0 <= I < N), auto or auto/N; got "${value}"`);
    }
    const count = auto[1] ?? env["MEGATRON_CONVERT_WORKERS"];
    if (env["SLURM_ARRAY_TASK_ID"] !== undefined) {
      const index = Number(env["SLURM_ARRAY_TASK_ID"]) - Number(env["SLURM_ARRAY_TASK_MIN"] ?? 0);
      return checkedShare(index, Number(count ?? env["SLURM_ARRAY_TASK_COUNT"]), "SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT");
    }
    if (env["JOB_COMPLETION_INDEX"] !== undefined) {
      if (count === undefined) {
        throw new InvalidArgumentError("--worker auto in a Kubernetes indexed Job needs the worker count: --worker auto/N or MEGATRON_CONVERT_WORKERS=N (the Job's completions)");
      }
      return checkedShare(Number(env["JOB_COMPLETION_INDEX"]), Number(count), "JOB_COMPLETION_INDEX");
    }
    throw new InvalidArgumentError("--worker auto found no SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX in the environment; pass --worker I/N");
  };
}

function checkedShare(index: number, count: number, from: string): WorkerShare {
  if (!Number.isInteger(index) || !Number.isInteger(count) || count < 1 || index < 0 || index >= count) {
    throw new InvalidArgumentError(`--worker: worker ${index} of ${count} (from ${from}) is not a worker I of N with 0 <= I < N`);
  }
  return { index, count };
}
