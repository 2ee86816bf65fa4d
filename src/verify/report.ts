/** The JSON a CI step reads: stable field names, `schemaVersion` bumps on breaking changes. */
export interface Difference {
  /** Rank file (relative to the checkpoint root) or HF file. */
  readonly file: string;
  /** The key in that file (Megatron local name or HF name). */
  readonly key: string;
  /** The HF tensors whose bytes land there. */
  readonly hfTensors: readonly string[];
  readonly problem: string;
}

export interface ExactReport {
  readonly schemaVersion: 1;
  readonly mode: "exact";
  readonly ok: boolean;
  readonly hf: string;
  readonly mcore: string;
  readonly layout: unknown;
  readonly filesChecked: number;
  readonly tensorsChecked: number;
  readonly bytesCompared: number;
  /** Threads that compared bytes (1: the main thread alone; n: it and n - 1 worker threads). */
  readonly threads: number;
  readonly differences: readonly Difference[];
  readonly seconds: number;
}

export const MAX_REPORTED_DIFFERENCES = 200;
