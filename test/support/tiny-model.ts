import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { loadProfiles, type MegatronProfiles } from "../../src/mapping/profiles.js";
import { loadTable, type MappingTable } from "../../src/mapping/table.js";
import type { ModelDims } from "../../src/model/model-dims.js";
import type { Dtype, TensorSpec } from "../../src/model/tensor.js";

export const REPO = join(import.meta.dirname, "..", "..");
export const SHARED = join(REPO, "..", "shared");

export async function mixtralTable(): Promise<MappingTable> {
  return loadTable(JSON.parse(await readFile(join(REPO, "mappings", "mixtral.json"), "utf8")), "mappings/mixtral.json");
}

export async function profiles(): Promise<MegatronProfiles> {
  return loadProfiles(JSON.parse(await readFile(join(REPO, "mappings", "megatron.json"), "utf8")), "mappings/megatron.json");
}

export function dimsOf(overrides: Partial<ModelDims> = {}): ModelDims {
  return {
    layers: 4,
    hidden: 64,
    heads: 8,
    kvGroups: 4,
    headDim: 8,
    ffn: 32,
    experts: 8,
    topk: 2,
    sharedFfn: 0,
    normTopk: true,
    vocab: 250,
    normEps: 1e-5,
    ropeTheta: 1e6,
    maxPositions: 256,
    tieEmbeddings: false,
    dtype: "BF16",
    ...overrides,
  };
}

/** The HF Mixtral tensor list for dims (per-expert layout). */
export function mixtralTensors(d: ModelDims, dtype: Dtype = d.dtype): TensorSpec[] {
  const t = (name: string, shape: number[]): TensorSpec => ({ name, dtype, shape });
  const out: TensorSpec[] = [t("model.embed_tokens.weight", [d.vocab, d.hidden])];
  for (let l = 0; l < d.layers; l++) {
    const p = `model.layers.${l}`;
    out.push(
      t(`${p}.input_layernorm.weight`, [d.hidden]),
      t(`${p}.self_attn.q_proj.weight`, [d.heads * d.headDim, d.hidden]),
      t(`${p}.self_attn.k_proj.weight`, [d.kvGroups * d.headDim, d.hidden]),
      t(`${p}.self_attn.v_proj.weight`, [d.kvGroups * d.headDim, d.hidden]),
      t(`${p}.self_attn.o_proj.weight`, [d.hidden, d.heads * d.headDim]),
      t(`${p}.post_attention_layernorm.weight`, [d.hidden]),
      t(`${p}.block_sparse_moe.gate.weight`, [d.experts, d.hidden]),
    );
    for (let e = 0; e < d.experts; e++) {
      const q = `${p}.block_sparse_moe.experts.${e}`;
      out.push(t(`${q}.w1.weight`, [d.ffn, d.hidden]), t(`${q}.w2.weight`, [d.hidden, d.ffn]), t(`${q}.w3.weight`, [d.ffn, d.hidden]));
    }
  }
  out.push(t("model.norm.weight", [d.hidden]), t("lm_head.weight", [d.vocab, d.hidden]));
  return out;
}
