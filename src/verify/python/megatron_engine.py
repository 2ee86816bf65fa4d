"""--engine megatron: what the real Megatron-Core GPTModel path needs, and whether this machine has it.

The path would build Megatron-Core's GPTModel on TP x PP x EP GPUs under torchrun, load each rank's
legacy file into its model chunk and run the forward schedule. It needs, on the Python that runs
the check: megatron.core importable, transformer_engine when the checkpoint uses the TE spec,
torch.distributed with NCCL, `torchrun`, and at least TP x PP x EP visible CUDA GPUs. This module
only detects; see README ("verify --forward", engines) for the state of the runner.
"""

import importlib.util
import shutil

import torch

from verify_errors import VerifyError


def find(module):
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def requirements(ckpt, spec):
    """The list of unmet requirements for running the checkpoint's layout on real Megatron-Core."""
    world = ckpt.tp * ckpt.pp * ckpt.ep
    missing = []
    if not find("megatron.core"):
        missing.append("the megatron.core package (pip install megatron-core, or Megatron-LM on PYTHONPATH)")
    if spec == "te" and not find("transformer_engine"):
        missing.append("transformer_engine (the checkpoint uses the Transformer-Engine spec)")
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpus < world:
        missing.append(f"{world} CUDA GPUs for TP={ckpt.tp} x PP={ckpt.pp} x EP={ckpt.ep} (torch sees {gpus})")
    if not (torch.distributed.is_available() and torch.distributed.is_nccl_available()):
        missing.append("torch.distributed with NCCL")
    if shutil.which("torchrun") is None and not find("torch.distributed.run"):
        missing.append("torchrun")
    return missing


def check(ckpt, spec):
    missing = requirements(ckpt, spec)
    if missing:
        raise VerifyError(
            "verify.engine-unavailable",
            "--engine megatron cannot run here; missing: " + "; ".join(missing),
            "use --engine builtin (the default), which computes the Megatron side from the rank files without Megatron-Core",
        )
    raise VerifyError(
        "verify.engine-unavailable",
        "--engine megatron: the requirements are met, but this version has no tested torchrun runner for Megatron-Core's GPTModel",
        "use --engine builtin (the default); see README, 'verify --forward'",
    )
