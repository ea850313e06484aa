"""Checkpoints written atomically, with everything needed to resume bit-for-bit on CPU."""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agman.io import write_file_atomically

#: A run folder's checkpoints: the best validation score's (what the test split is evaluated
#: with) and the last finished epoch's (for resuming).
BEST_CHECKPOINT = "best.pt"
LAST_CHECKPOINT = "last.pt"


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """torch.save, written atomically: a crash leaves the old file."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_file_atomically(path, buffer.getvalue())


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        raise RuntimeError(f"{path}: unreadable checkpoint ({err})") from None


def rng_states() -> dict[str, Any]:
    states = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
