/**
 * The JSON report of `verify --forward` (mode "forward"): stable field names, `schemaVersion`
 * bumps on breaking changes. Produced from what src/verify/python/forward_verify.py writes.
 * Non-finite numbers (a NaN loss from a broken checkpoint) arrive as null.
 */

/** One compared stage: the embedding output, each decoder layer's output, the final norm, the logits. */
export interface ForwardStage {
  /** "embedding", "layer N" (global layer index), "final_norm" or "logits". */
  readonly name: string;
  /** The global layer index for "layer N" stages, else null. */
  readonly layer: number | null;
  /** max |megatron - hf| over the whole [batch, seq, hidden] (or vocab) tensor. */
  readonly maxAbsDiff?: number | null;
  /** max(1, max |hf|): what maxAbsDiff is divided by in the fp32 measure. */
  readonly scale?: number | null;
  /** ||megatron - hf||_2 / ||hf||_2. */
  readonly relRms?: number | null;
  /** The value checked against tolerance.hidden (see tolerance.hiddenMeasure). */
  readonly measure?: number | null;
  readonly ok: boolean;
  /** Set when the two sides could not be compared (shapes differ). */
  readonly problem?: string;
}

export interface ForwardLosses {
  /** Mean next-token cross-entropy over batch x (seqLen - 1) positions. */
  readonly hf: number | null;
  readonly megatron: number | null;
  readonly absDiff: number | null;
  /** absDiff / |hf|: checked against tolerance.loss. */
  readonly relDiff: number | null;
  readonly ok: boolean;
}

export interface ForwardTolerance {
  readonly loss: number;
  readonly lossMeasure: string;
  readonly hidden: number;
  readonly hiddenMeasure: string;
}

export interface ForwardHfSide {
  /** "transformers" (AutoModelForCausalLM) or "builtin" (the streaming PyTorch model of each supported architecture). */
  readonly implementation: "transformers" | "builtin";
  /** Why that one ran ("transformers is not installed", ...). */
  readonly reason: string;
  /** Expert tensor layout of the safetensors: "per-expert", "fused" (transformers 5), or "dense" (no experts). */
  readonly layout: "per-expert" | "fused" | "dense";
  /** config.json's model_type, and the features the built-in model follows (qkv bias, q/k norm, shared expert ...). */
  readonly modelType: string;
  readonly features: Readonly<Record<string, unknown>>;
  readonly weightDtype: string;
  readonly transformersVersion?: string;
  readonly seconds: number;
}

export interface ForwardMegatronSide {
  /** "builtin": computed from the rank files per rank; "megatron": Megatron-Core's GPTModel. */
  readonly engine: "builtin" | "megatron";
  readonly spec: "te" | "local" | null;
  readonly experts: "sequential" | "te-grouped" | "grouped" | null;
  /** Read from the rank files' args. */
  readonly layout: {
    readonly tp: number;
    readonly pp: number;
    readonly ep: number;
    readonly etp: number;
    readonly vpp: number;
    readonly ppFirstLayers: number | null;
    readonly ppLastLayers: number | null;
    readonly paddedVocab: number;
    readonly rankFiles: number;
    readonly routerPreSoftmax: boolean;
    readonly routerScoreFunction: string;
    readonly tiedEmbeddings: boolean;
  };
  /** What the rank files and args say the model has (qkv bias, q/k layernorm, shared expert, tied embeddings ...). */
  readonly features: Readonly<Record<string, unknown>>;
  /** How rank files were read: "lazy-zip" (per-tensor reads, see README). */
  readonly loader: string;
  readonly seconds: number;
}

export interface ForwardInput {
  /** "bundled-sample" (src/verify/python/sample.txt), "text" (--text) or "tokens" (--tokens). */
  readonly source: "bundled-sample" | "text" | "tokens";
  readonly file?: string;
  /** null for --tokens; "tokenizers" / "transformers"; "byte-pairs-modulo-vocab" without a tokenizer. */
  readonly tokenization: string | null;
  readonly batch: number;
  readonly seqLen: number;
  readonly tokens: number;
}

export interface PeakMemory {
  /** ru_maxrss of the Python process, in bytes. */
  readonly rssBytes: number;
  /** torch.cuda.max_memory_allocated, in bytes; null on the CPU. */
  readonly cudaBytes: number | null;
}

export interface ForwardReport {
  readonly schemaVersion: 1;
  readonly mode: "forward";
  /** losses.ok and every stage ok. */
  readonly ok: boolean;
  readonly hf: string;
  readonly mcore: string;
  readonly losses: ForwardLosses;
  readonly tolerance: ForwardTolerance;
  readonly stages: readonly ForwardStage[];
  /** The first stage beyond tolerance.hidden, so a wrong conversion points at its layer; null if none. */
  readonly firstDifference: ForwardStage | null;
  /** [layer, expert] pairs the Megatron side routed no token to: those experts were not checked. */
  readonly unexercisedExperts: readonly (readonly [number, number])[];
  readonly hfSide: ForwardHfSide;
  readonly megatronSide: ForwardMegatronSide;
  readonly input: ForwardInput;
  /** "cpu" or "cuda" / "cuda:N". */
  readonly device: string;
  readonly computeDtype: "fp32" | "bf16";
  /** After the HF side, and at the end (the Megatron side's peak when it is the larger). */
  readonly peakMemory: { readonly afterHf: PeakMemory; readonly end: PeakMemory };
  readonly python: { readonly path: string; readonly source: PythonSource; readonly version: string; readonly torch: string };
  /** Wall time of the whole check, the Python start included. */
  readonly seconds: number;
}

export type PythonSource = "--python" | "MEGATRON_CONVERT_PYTHON" | "default";
