import { InvalidArgumentError } from "commander";
import { EXPERT_IMPLS, LAYER_SPECS, type ExpertImpl, type LayerSpec } from "../mapping/profiles.js";
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
