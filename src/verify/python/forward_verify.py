"""megatron-convert verify --forward: zero-shot loss of the HF model and of the Megatron rank files.

Run by src/verify/forward.ts; it writes its whole result as JSON to --result and prints only
progress on stderr. Exit 0: the result file holds {"results": [...]} (a pass or a fail each);
exit 3: the result file holds {"error": {code, message, hint}}; anything else is a crash.

The HF side (transformers when importable and it fits, else the built-in streaming model: Llama,
Mistral, Mixtral, Qwen2-MoE or Qwen3-MoE, steered by the features hf_config.py reads from config.json) runs
first and keeps every stage's output (embedding, each layer, final norm, logits) in fp32 on the CPU;
then each Megatron checkpoint runs from its rank files and is compared stage by stage.
"""

import argparse
import json
import math
import os
import platform
import resource
import sys
import time


def finite(value):
    """JSON has no NaN / Infinity: a non-finite number (the loss of a broken checkpoint) becomes null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def emit(path, payload):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(finite(payload), f, indent=1, allow_nan=False)
    os.replace(tmp, path)


def parse(argv):
    a = argparse.ArgumentParser(prog="forward_verify.py")
    a.add_argument("--hf", required=True)
    a.add_argument("--mcore", action="append", required=True)
    a.add_argument("--result", required=True)
    a.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    a.add_argument("--tokens")
    a.add_argument("--text")
    a.add_argument("--seq-len", type=int, default=64)
    a.add_argument("--batch", type=int, default=2)
    a.add_argument("--compute-dtype", default="fp32", choices=["fp32", "bf16"])
    a.add_argument("--tol", type=float)
    a.add_argument("--hidden-tol", type=float)
    a.add_argument("--engine", default="builtin", choices=["builtin", "megatron"])
    a.add_argument("--hf-impl", default="auto", choices=["auto", "transformers", "builtin"])
    return a.parse_args(argv)


# Defaults per compute dtype: fp32 differences come only from summation order (TP partial sums).
LOSS_TOL = {"fp32": 1e-5, "bf16": 1e-2}
HIDDEN_TOL = {"fp32": 1e-4, "bf16": 1e-1}
HIDDEN_MEASURE = {
    "fp32": ("max-abs", "max|megatron - hf| / max(1, max|hf|), per stage"),
    "bf16": ("rel-rms", "||megatron - hf||_2 / ||hf||_2, per stage"),
}


def progress(text):
    print(f"progress: {text}", file=sys.stderr, flush=True)


def peak_memory(torch, device):
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    cuda = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    return {"rssBytes": rss, "cudaBytes": cuda}


def cross_entropy(torch, logits, ids):
    import torch.nn.functional as F

    return float(F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), ids[:, 1:].reshape(-1).to(logits.device)))


def run_hf(torch, opts, folder, ids, device, dtype):
    import hf_transformers
    from hf_builtin import HfBuiltin

    impl, reason = hf_transformers.choose(opts.hf_impl, folder, device, dtype)
    if impl is None:
        from verify_errors import VerifyError

        raise VerifyError("verify.no-transformers", f"--hf-impl transformers: {reason}", "pip install transformers, or use --hf-impl builtin")
    runner = hf_transformers.HfTransformers(folder, device, dtype) if impl == "transformers" else HfBuiltin(folder, device, dtype)
    stages = []
    started = time.perf_counter()
    logits = runner.run(ids, lambda name, t: stages.append((name, t.detach().float().cpu())))
    loss = cross_entropy(torch, logits, ids)
    stages.append(("logits", logits.detach().float().cpu()))
    info = {
        "implementation": impl, "reason": reason, "layout": folder.layout, "weightDtype": folder.weight_dtype(),
        "modelType": folder.config["model_type"], "features": folder.config["features"], "seconds": time.perf_counter() - started,
    }
    if impl == "transformers":
        info["transformersVersion"] = hf_transformers.transformers_version()
    return loss, stages, info


def compare_stage(torch, name, ref, got, tols):
    """fp32: max|got - ref| / max(1, max|ref|); bf16: ||got - ref|| / ||ref|| (rounding noise and router
    near-ties make a per-element maximum meaningless in bf16). Both are reported; `measure` is the one checked."""
    layer = int(name.split()[1]) if name.startswith("layer ") else None
    if got.shape != ref.shape:
        return {"name": name, "layer": layer, "ok": False, "problem": f"shape {list(got.shape)} != {list(ref.shape)}"}
    diff = (got - ref).abs()
    max_diff = float(diff.max()) if diff.numel() else 0.0
    scale = max(1.0, float(ref.abs().max()) if ref.numel() else 0.0)
    rel_rms = float(diff.norm() / ref.norm().clamp_min(1e-30))
    measure = rel_rms if tols["hiddenMeasureKind"] == "rel-rms" else max_diff / scale
    ok = bool(torch.isfinite(got).all()) and measure <= tols["hidden"]
    return {"name": name, "layer": layer, "maxAbsDiff": max_diff, "scale": scale, "relRms": rel_rms, "measure": measure, "ok": ok}


def run_mcore(torch, opts, path, vocab, ids, hf_loss, hf_stages, device, dtype, tols):
    from mcore_checkpoint import McoreCheckpoint
    from mcore_forward import McoreRunner

    started = time.perf_counter()
    ckpt = McoreCheckpoint(path)
    runner = McoreRunner(ckpt, vocab, device, dtype)
    ref = dict(hf_stages)
    stages = []

    def keep(name, t):
        stages.append(compare_stage(torch, name, ref[name], t.detach().float().cpu(), tols))
        progress(f"megatron {name}")

    logits = runner.run(ids, keep)
    loss = cross_entropy(torch, logits, ids)
    stages.append(compare_stage(torch, "logits", ref["logits"], logits.detach().float().cpu(), tols))
    abs_diff = abs(loss - hf_loss)
    rel_diff = abs_diff / max(abs(hf_loss), 1e-12)
    first = next((s for s in stages if not s["ok"]), None)
    loss_ok = rel_diff <= tols["loss"]
    return {
        "mcore": path,
        "ok": loss_ok and first is None,
        "losses": {"hf": hf_loss, "megatron": loss, "absDiff": abs_diff, "relDiff": rel_diff, "ok": loss_ok},
        "stages": stages,
        "firstDifference": first,
        "unexercisedExperts": runner.unexercised,
        "megatron": {
            "engine": opts.engine, "spec": runner.spec, "experts": runner.experts_impl, "layout": ckpt.describe(), "features": runner.features(),
            "loader": "lazy-zip", "seconds": time.perf_counter() - started,
        },
    }


def check_megatron_engine(paths):
    """Before any work: --engine megatron needs megatron.core, GPUs and torchrun (megatron_engine.py)."""
    import torch

    import megatron_engine
    from mcore_checkpoint import McoreCheckpoint
    from mcore_forward import McoreRunner

    for path in paths:
        ckpt = McoreCheckpoint(path)
        runner = McoreRunner(ckpt, 0, torch.device("cpu"), torch.float32)
        runner.detect(*ckpt.chunk_map[0][:2], "decoder.layers.0.")
        megatron_engine.check(ckpt, runner.spec)


def main(argv):
    opts = parse(argv)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from verify_errors import VerifyError

    started = time.perf_counter()
    try:
        # config.json and the input first: their errors need no torch (whose import takes seconds)
        from forward_input import build_batch
        from hf_config import load_config

        cfg = load_config(opts.hf)
        seq_len = min(opts.seq_len, cfg["max_positions"], cfg["sliding_window"] or opts.seq_len)
        rows, input_info = build_batch(opts, opts.hf, cfg["vocab"], seq_len, opts.batch)
        try:
            import torch
        except Exception as e:  # noqa: BLE001 - any import failure means "no usable torch"
            raise VerifyError("verify.no-torch", f"{sys.executable} cannot import torch: {e}", "apt-get install python3-torch, or pip install torch") from e
        return run(torch, opts, VerifyError, torch.tensor(rows, dtype=torch.int64), input_info, started)
    except VerifyError as e:
        emit(opts.result, {"error": e.to_json()})
        return 3


def run(torch, opts, VerifyError, ids, input_info, started):
    from hf_folder import HfFolder

    if opts.device == "cuda" and not torch.cuda.is_available():
        raise VerifyError("verify.no-cuda", "--device cuda: torch sees no CUDA device", "use --device cpu")
    device = torch.device("cuda" if opts.device == "cuda" or (opts.device == "auto" and torch.cuda.is_available()) else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dtype = torch.float32 if opts.compute_dtype == "fp32" else torch.bfloat16
    tols = {
        "loss": opts.tol if opts.tol is not None else LOSS_TOL[opts.compute_dtype],
        "hidden": opts.hidden_tol if opts.hidden_tol is not None else HIDDEN_TOL[opts.compute_dtype],
        "hiddenMeasureKind": HIDDEN_MEASURE[opts.compute_dtype][0],
    }
    folder = HfFolder(opts.hf)
    cfg = folder.config
    if opts.engine == "megatron":
        check_megatron_engine(opts.mcore)
    with torch.no_grad():
        progress("hf side")
        hf_loss, hf_stages, hf_info = run_hf(torch, opts, folder, ids, device, dtype)
        hf_peak = peak_memory(torch, device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        results = []
        for path in opts.mcore:
            progress(f"megatron side: {path}")
            try:
                results.append(run_mcore(torch, opts, path, cfg["vocab"], ids, hf_loss, hf_stages, device, dtype, tols))
            except VerifyError as e:
                if len(opts.mcore) == 1:
                    raise
                results.append({"mcore": path, "error": e.to_json()})
    emit(opts.result, {
        "results": results, "hf": hf_info, "input": input_info, "device": str(device), "computeDtype": opts.compute_dtype,
        "tolerance": {"loss": tols["loss"], "lossMeasure": "|loss_megatron - loss_hf| / |loss_hf|", "hidden": tols["hidden"], "hiddenMeasure": HIDDEN_MEASURE[opts.compute_dtype][1]},
        "peakMemory": {"afterHf": hf_peak, "end": peak_memory(torch, device)},
        "versions": {"python": platform.python_version(), "torch": torch.__version__},
        "seconds": time.perf_counter() - started,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
