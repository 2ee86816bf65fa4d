"""The HF side through real transformers (AutoModelForCausalLM), when it is importable.

Unlike the built-in implementation this loads the whole model, so `auto` picks it only when the
model fits comfortably in the memory of the chosen device. Stage outputs are captured with forward
hooks on embed_tokens, every decoder layer and the final norm (a layer returns a tensor in
transformers 5 and a tuple in 4.x). Eager attention keeps the arithmetic the same as the reference.
"""

import importlib.util
import os

import torch

FIT_FRACTION = 0.6


def transformers_version():
    if importlib.util.find_spec("transformers") is None:
        return None
    try:
        import transformers

        return transformers.__version__
    except Exception:  # a broken install counts as absent
        return None


def available_bytes(device):
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return free
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return 0


def choose(requested, folder, device, dtype):
    """('transformers' | 'builtin', reason)."""
    version = transformers_version()
    if requested == "builtin":
        return "builtin", "--hf-impl builtin"
    if version is None:
        if requested == "transformers":
            return None, "transformers is not importable"
        return "builtin", "transformers is not installed"
    need = folder.total_params() * torch.tensor([], dtype=dtype).element_size()
    have = available_bytes(device)
    if requested == "auto" and need > FIT_FRACTION * have:
        return "builtin", f"the whole model needs {need / 2**30:.1f} GiB, {have / 2**30:.1f} GiB free: streaming built-in used"
    return "transformers", f"transformers {version}"


class HfTransformers:
    name = "transformers"

    def __init__(self, folder, device, dtype):
        self.f = folder
        self.device = device
        self.dtype = dtype

    def run(self, ids, keep):
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(self.f.folder, torch_dtype=self.dtype, attn_implementation="eager")
        model.to(self.device).eval()
        inner = model.model
        hooks = []

        def hook(name):
            def capture(_module, _inputs, output):
                keep(name, output[0] if isinstance(output, (tuple, list)) else output)

            return capture

        hooks.append(inner.embed_tokens.register_forward_hook(hook("embedding")))
        for i, layer in enumerate(inner.layers):
            hooks.append(layer.register_forward_hook(hook(f"layer {i}")))
        hooks.append(inner.norm.register_forward_hook(hook("final_norm")))
        try:
            out = model(input_ids=ids.to(self.device), use_cache=False)
        finally:
            for h in hooks:
                h.remove()
        logits = out.logits.float()[..., : self.f.config["vocab"]]
        del model
        return logits
