import { describe, expect, it } from "vitest";
import { compareStateKeys, sortByStateKey } from "../../src/mapping/order.js";

const MODULES = ["embedding", "decoder", "output_layer"];
const LEAVES = ["weight", "bias"];

describe("state-dict key order", () => {
  const keys = [
    "output_layer.weight",
    "decoder.layers.10.mlp.linear_fc1.weight",
    "decoder.layers.2.mlp.linear_fc1.weight",
    "decoder.layers.2.mlp.linear_fc1._extra_state",
    "decoder.layers.2.mlp.linear_fc1.bias",
    "decoder.final_layernorm.weight",
    "embedding.word_embeddings.weight",
    "decoder.layers.2.mlp.experts.local_experts.10.linear_fc1.weight",
    "decoder.layers.2.mlp.experts.local_experts.9.linear_fc1.weight",
    "decoder.layers.2.mlp.experts.weight1",
    "decoder.layers.2.mlp.experts.weight0",
  ];

  it("sorts as nn.Module.state_dict() yields: own leaves first, numbered children by number", () => {
    const sorted = sortByStateKey(keys, (k) => k, MODULES, LEAVES);
    expect(sorted).toEqual([
      "embedding.word_embeddings.weight",
      "decoder.final_layernorm.weight",
      "decoder.layers.2.mlp.experts.weight0",
      "decoder.layers.2.mlp.experts.weight1",
      "decoder.layers.2.mlp.experts.local_experts.9.linear_fc1.weight",
      "decoder.layers.2.mlp.experts.local_experts.10.linear_fc1.weight",
      "decoder.layers.2.mlp.linear_fc1.weight",
      "decoder.layers.2.mlp.linear_fc1.bias",
      "decoder.layers.2.mlp.linear_fc1._extra_state",
      "decoder.layers.10.mlp.linear_fc1.weight",
      "output_layer.weight",
    ]);
  });

  it("sorts exactly as the pairwise comparison does, whatever the input order", () => {
    const expected = [...keys].sort((a, b) => compareStateKeys(a, b, MODULES, LEAVES));
    for (let seed = 1; seed <= 5; seed++) {
      const shuffled = [...keys].sort((a, b) => ((a.length * 31 + seed * 7) % 11) - ((b.length * 17 + seed) % 13));
      expect(sortByStateKey(shuffled, (k) => k, MODULES, LEAVES)).toEqual(expected);
    }
  });
});
