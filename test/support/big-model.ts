import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { writeSafetensorsSharded } from "../../src/formats/safetensors/writer.js";
import type { TensorSpec } from "../../src/model/tensor.js";
import { byteLengthOf } from "../../src/model/tensor.js";
import { seededBytes } from "./memory-space.js";
import { dimsOf, mixtralTensors } from "./tiny-model.js";

/**
 * A Mixtral-shaped HF folder of some tens of MB with cheap pseudo-random bf16 bytes: large
 * enough that a conversion runs long enough to be interrupted.
 */
export async function writeBigModel(dir: string): Promise<string> {
  const dims = dimsOf({ layers: 8, hidden: 256, heads: 8, kvGroups: 4, headDim: 32, ffn: 512, experts: 8, vocab: 32000 });
  await mkdir(dir, { recursive: true });
  const tensors = mixtralTensors(dims);
  const payload = (spec: TensorSpec, i: number) => ({
    spec,
    data: async function* () {
      // small, finite values: a bf16 exponent of 0x3c.. keeps them in (-1, 1)
      const bytes = seededBytes(byteLengthOf(spec), i);
      for (let k = 1; k < bytes.length; k += 2) {
        bytes[k] = ((bytes[k] as number) & 0x80) | 0x3c;
      }
      yield bytes;
    },
  });
  await writeSafetensorsSharded(dir, tensors.map(payload), { maxShardBytes: 30_000_000 });
  const config = {
    architectures: ["MixtralForCausalLM"],
    model_type: "mixtral",
    hidden_size: dims.hidden,
    intermediate_size: dims.ffn,
    num_hidden_layers: dims.layers,
    num_attention_heads: dims.heads,
    num_key_value_heads: dims.kvGroups,
    head_dim: dims.headDim,
    num_local_experts: dims.experts,
    num_experts_per_tok: 2,
    vocab_size: dims.vocab,
    max_position_embeddings: 4096,
    rms_norm_eps: 1e-5,
    rope_theta: 1e6,
    tie_word_embeddings: false,
    torch_dtype: "bfloat16",
  };
  await writeFile(join(dir, "config.json"), JSON.stringify(config, null, 2));
  return dir;
}
