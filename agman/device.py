"""Where a network runs and in which precision: shared by training, evaluation, the figures and
``agman search``, so that inference does not import the training loop."""

from __future__ import annotations

import contextlib

import torch


def pick_device(name: str) -> torch.device:
    """``train.device``: ``auto`` is CUDA when present; ``cuda`` without a GPU is an error."""
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device: cuda requested but no CUDA device is available")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def autocast_context(device: torch.device, amp_dtype: str, cache_enabled: bool = True):
    """bf16 autocast on CUDA; full precision on CPU, where autocast would only slow things.
    ``cache_enabled=False`` for a region captured as a CUDA graph."""
    if device.type != "cuda" or amp_dtype == "none":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=getattr(torch, amp_dtype), cache_enabled=cache_enabled)


def resolve_memory_format(name: str, device: torch.device) -> torch.memory_format:
    """``auto`` is channels_last on CUDA (tensor cores want NHWC) and contiguous on CPU; on a
    2-core CPU channels_last measured 1.3x faster for the demo's ResNet-18 at 64 px, so the
    demo profile asks for it explicitly."""
    if name == "auto":
        name = "channels_last" if device.type == "cuda" else "contiguous"
    return torch.channels_last if name == "channels_last" else torch.contiguous_format
