import { randomFillSync } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { writeSafetensorsSharded, type TensorPayload } from "../formats/safetensors/writer.js";
import type { TensorSpec } from "../model/tensor.js";

/**
 * A synthetic Mixtral with the real model's proportions (Mixtral-8x7B: hidden 4096, ffn 3.5 x
 * hidden, 32 heads in 8 key/value groups, 8 experts, vocab 32000, 19 Hub shards), scaled to a
 * byte size by choosing the hidden size from the smallest model of a run and then the layer count.
 * More experts (a fine-grained MoE such as Qwen's, 60-128 experts) make a model of the same size
 * out of many more, smaller tensors.
 */
export interface SyntheticDims {
  readonly hidden: number;
  readonly ffn: number;
  readonly layers: number;
  readonly heads: number;
  readonly kvGroups: number;
  readonly headDim: number;
  readonly experts: number;
  readonly vocab: number;
}

const HEADS = 32;
const KV_GROUPS = 8;
/** Mixtral's expert count, the default. */
export const MIXTRAL_EXPERTS = 8;
const MIXTRAL_VOCAB = 32_000;
/** Mixtral-8x7B is 93 GB in 19 shards of about 5 GB; a synthetic model keeps the shard count. */
const HUB_SHARDS = 19;
/** The smallest model of a run has at least this many layers at the chosen hidden size. */
const MIN_LAYERS = 4;
/** Even, so that the reshard target's PP=2 divides the layers. */
const LAYER_STEP = 2;
/** Scaled-down vocabularies take at most this share of the model (embedding + lm_head). */
const MAX_VOCAB_SHARE = 0.125;
const BF16_BYTES = 2;

function layerParams(h: number, experts: number): number {
  const ffn = 3.5 * h;
  const attention = h * h * 2 + 2 * (h / 4) * h; // q, o: [H, H]; k, v: [H/4, H] (8 of 32 heads)
  return attention + experts * 3 * ffn * h + experts * h + 2 * h; // experts w1/w2/w3, router, two norms
}

function vocabFor(h: number, smallestBytes: number): number {
  const fits = Math.floor((smallestBytes * MAX_VOCAB_SHARE) / (2 * h * BF16_BYTES) / 1000) * 1000;
  return Math.min(MIXTRAL_VOCAB, Math.max(1000, fits)); // a multiple of 1000: padded at TP=4, as 32000 is
}

export function modelBytes(d: SyntheticDims): number {
  return (d.layers * layerParams(d.hidden, d.experts) + 2 * d.vocab * d.hidden + d.hidden) * BF16_BYTES;
}

/** Dimensions for each requested size; hidden size and vocab are shared so the largest tensor is too. */
export function chooseDims(sizes: readonly number[], experts = MIXTRAL_EXPERTS): SyntheticDims[] {
  const smallest = Math.min(...sizes);
  let hidden = 64;
  for (let h = 4096; h >= 64; h /= 2) {
    const trial = { hidden: h, layers: MIN_LAYERS, vocab: vocabFor(h, smallest), experts };
    if (modelBytes(dimsOf(trial)) <= smallest) {
      hidden = h;
      break;
    }
  }
  const vocab = vocabFor(hidden, smallest);
  return sizes.map((size) => {
    const fixed = modelBytes(dimsOf({ hidden, layers: 0, vocab, experts }));
    const perLayer = layerParams(hidden, experts) * BF16_BYTES;
    const layers = Math.max(LAYER_STEP, Math.ceil(Math.max(0, size - fixed) / perLayer / LAYER_STEP) * LAYER_STEP);
    return dimsOf({ hidden, layers, vocab, experts });
  });
}

function dimsOf(d: { hidden: number; layers: number; vocab: number; experts: number }): SyntheticDims {
  return { ...d, ffn: 3.5 * d.hidden, heads: HEADS, kvGroups: KV_GROUPS, headDim: d.hidden / HEADS };
}

/** Every HF tensor in the order the Hub files hold them (per-expert w1/w2/w3 layout). */
export function tensorSpecs(d: SyntheticDims): TensorSpec[] {
  const t = (name: string, ...shape: number[]): TensorSpec => ({ name, dtype: "BF16", shape });
  const specs = [t("model.embed_tokens.weight", d.vocab, d.hidden)];
  const kv = d.kvGroups * d.headDim;
  for (let l = 0; l < d.layers; l++) {
    const p = `model.layers.${l}.`;
    specs.push(
      t(`${p}input_layernorm.weight`, d.hidden),
      t(`${p}self_attn.q_proj.weight`, d.heads * d.headDim, d.hidden),
      t(`${p}self_attn.k_proj.weight`, kv, d.hidden),
      t(`${p}self_attn.v_proj.weight`, kv, d.hidden),
      t(`${p}self_attn.o_proj.weight`, d.hidden, d.heads * d.headDim),
      t(`${p}post_attention_layernorm.weight`, d.hidden),
      t(`${p}block_sparse_moe.gate.weight`, d.experts, d.hidden),
    );
    for (let e = 0; e < d.experts; e++) {
      const x = `${p}block_sparse_moe.experts.${e}.`;
      specs.push(t(`${x}w1.weight`, d.ffn, d.hidden), t(`${x}w2.weight`, d.hidden, d.ffn), t(`${x}w3.weight`, d.ffn, d.hidden));
    }
  }
  specs.push(t("model.norm.weight", d.hidden), t("lm_head.weight", d.vocab, d.hidden));
  return specs;
}

export function largestTensorBytes(d: SyntheticDims): number {
  return Math.max(...tensorSpecs(d).map((s) => s.shape.reduce((a, b) => a * b, BF16_BYTES)));
}

export function configJson(d: SyntheticDims): Record<string, unknown> {
  return {
    architectures: ["MixtralForCausalLM"],
    model_type: "mixtral",
    hidden_act: "silu",
    hidden_size: d.hidden,
    intermediate_size: d.ffn,
    num_hidden_layers: d.layers,
    num_attention_heads: d.heads,
    num_key_value_heads: d.kvGroups,
    head_dim: d.headDim,
    num_local_experts: d.experts,
    num_experts_per_tok: 2,
    vocab_size: d.vocab,
    max_position_embeddings: 32768,
    rms_norm_eps: 1e-5,
    rope_theta: 1e6,
    tie_word_embeddings: false,
    torch_dtype: "bfloat16",
    bos_token_id: 1,
    eos_token_id: 2,
  };
}

/** Chunks handed to the writer: at or above its 4 MiB coalescing size, so they go straight to disk. */
const CHUNK = 8 << 20;
/** Odd-sized (in bf16 elements) so tensors starting at different offsets do not line up. */
const POOL_BYTES = (16 << 20) + 2 * 4099;

/**
 * Finite bf16 values of modest magnitude (|x| in [2^-9, 2)), so a NaN/Inf scan would pass;
 * each tensor starts at its own offset into a shared random pool (the pool is never changed,
 * so handing out views of it is safe).
 */
function valuePool(): Uint8Array {
  const pool = randomFillSync(new Uint8Array(POOL_BYTES));
  for (let i = 1; i < pool.length; i += 2) {
    const b = pool[i] ?? 0;
    pool[i] = (b & 0x80) | 0x3b | ((b & 1) << 2); // high byte: sign, exponent 118..127
  }
  return pool;
}

function startOf(name: string): number {
  let h = 2166136261;
  for (let i = 0; i < name.length; i++) {
    h = Math.imul(h ^ name.charCodeAt(i), 16777619) >>> 0;
  }
  return (h % (POOL_BYTES / 2)) * 2;
}

async function* bytesOf(pool: Uint8Array, name: string, length: number): AsyncGenerator<Uint8Array> {
  let at = startOf(name);
  let left = length;
  while (left > 0) {
    const n = Math.min(left, CHUNK, pool.length - at);
    yield pool.subarray(at, at + n);
    left -= n;
    at = (at + n) % pool.length;
  }
}

/** Writes config.json, the shards and model.safetensors.index.json into `dir`; returns the data bytes. */
export async function writeSyntheticModel(dir: string, d: SyntheticDims): Promise<{ bytes: number; shards: number }> {
  const pool = valuePool();
  const specs = tensorSpecs(d);
  const payloads: TensorPayload[] = specs.map((spec) => {
    const length = spec.shape.reduce((a, b) => a * b, BF16_BYTES);
    return { spec, data: () => bytesOf(pool, spec.name, length) };
  });
  const maxShardBytes = Math.max(largestTensorBytes(d), Math.ceil(modelBytes(d) / HUB_SHARDS));
  const written = await writeSafetensorsSharded(dir, payloads, { maxShardBytes });
  await writeFile(join(dir, "config.json"), `${JSON.stringify(configJson(d), null, 2)}\n`);
  return { bytes: written.totalSize, shards: written.files.length };
}
