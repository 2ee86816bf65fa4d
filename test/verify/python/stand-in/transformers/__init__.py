"""A stand-in `transformers` package: AutoModelForCausalLM whose modules compute with the built-in code,
returning 4.x-style tuples from decoder layers; tests put it on PYTHONPATH to drive the transformers path."""
import torch
import torch.nn.functional as F
from hf_builtin import HfBuiltin, rms_norm, rotary_cos_sin
from hf_folder import HfFolder

__version__ = "0.0.0-stand-in"
calls = []


class Layer(torch.nn.Module):
    def __init__(self, b, i):
        super().__init__()
        self.b, self.i = b, i

    def forward(self, h):
        b, i, c = self.b, self.i, self.b.c
        cos, sin = rotary_cos_sin(h.shape[1], c["head_dim"], c["rope_theta"], h.device, h.dtype)
        h = h + b.attention(rms_norm(h, b.w(f"model.layers.{i}.input_layernorm.weight"), c["eps"]), i, cos, sin)
        return (h + b.moe(rms_norm(h, b.w(f"model.layers.{i}.post_attention_layernorm.weight"), c["eps"]), i), None)


class Norm(torch.nn.Module):
    def __init__(self, b):
        super().__init__()
        self.b = b

    def forward(self, h):
        return rms_norm(h, self.b.w("model.norm.weight"), self.b.c["eps"])


class Model(torch.nn.Module):
    def __init__(self, path, dtype):
        super().__init__()
        b = HfBuiltin(HfFolder(path), torch.device("cpu"), dtype)
        self.b = b
        self.model = torch.nn.Module()
        self.model.embed_tokens = torch.nn.Embedding.from_pretrained(b.w("model.embed_tokens.weight"))
        self.model.layers = torch.nn.ModuleList([Layer(b, i) for i in range(b.c["layers"])])
        self.model.norm = Norm(b)

    def forward(self, input_ids, use_cache):
        h = self.model.embed_tokens(input_ids)
        for layer in self.model.layers:
            h = layer(h)[0]
        out = type("Out", (), {})()
        out.logits = F.linear(self.model.norm(h), self.b.w("lm_head.weight"))
        return out


class AutoModelForCausalLM:
    @staticmethod
    def from_pretrained(path, torch_dtype=None, attn_implementation=None):
        if attn_implementation != "eager" or torch_dtype is not torch.float32:
            raise ValueError(f"unexpected arguments {torch_dtype} {attn_implementation}")
        return Model(path, torch_dtype)
