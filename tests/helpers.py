"""Helpers the tests import (fixtures live in conftest.py): the repository's paths, the tiny config
of params.yaml's ci profile, and a tiny real training run."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import yaml

from agman.config import Config, resolve
from agman.data.prepared import PreparedData

ROOT = Path(__file__).resolve().parents[1]


def external(variable: str) -> Path | None:
    """A file or folder the tests cannot make and the repository does not hold (the real split
    files, the paper's text), named by environment variable ``variable``; None when unset."""
    value = os.environ.get(variable)
    return Path(value) if value else None


def ci_config(dataset: str = "demo_fashionai", root: str | Path = "unused", **blocks: dict) -> Config:
    """params.yaml under its ``ci`` profile (ResNet-18 from scratch at 32 px, no DataLoader workers)
    on the CPU, with ``data.dataset``/``data.root`` set as a cell's are; ``blocks`` replace fields
    block by block, e.g. ``ci_config(train={"epochs": 2}, model={"embed_dim": 16})``."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    cfg = resolve({**params, "profile": "ci"})[0]
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, dataset=dataset, root=str(root)),
                              train=dataclasses.replace(cfg.train, device="cpu"))
    for block, fields in blocks.items():
        cfg = dataclasses.replace(cfg, **{block: dataclasses.replace(getattr(cfg, block), **fields)})
    return cfg


def train_tiny_run(data: PreparedData, root: Path, out_dir: Path, curves: Path, name: str = "agman",
                   triplets: np.ndarray | None = None) -> Path:
    """One epoch of 2 batches of 8 triplets (ResNet-18, 32 px, embed_dim 16) on CPU: a real
    best.pt in seconds, for the figures and search tests. Returns the run folder."""
    # Imported here: every test session loads this file, most never train.
    from agman.data.triplets import sample_triplets
    from agman.training.loop import TrainPaths, train

    baseline = name != "agman"  # the baselines have neither part (as in params.yaml's variants)
    cfg = ci_config(data.meta["dataset"], root, triplets={"per_epoch": 16},
                    model={"name": name, "embed_dim": 16, "hierarchical": not baseline, "cls_loss": not baseline},
                    train={"epochs": 1, "batch_size": 8, "max_batches": 2, "lr": 1e-3}, eval={"batch_size": 64})
    triplet_dir = out_dir.parent / f".{out_dir.name}-triplets"
    triplet_dir.mkdir(parents=True)
    if triplets is None:
        triplets = sample_triplets(data.table, data.attributes, 16, seed=0, epoch=0)
    np.save(triplet_dir / "epoch_000.npy", triplets)
    train(cfg, data, TrainPaths(triplet_dir=triplet_dir, out_dir=out_dir, curves=curves))
    return out_dir


def train_stopped_at_second_validation(monkeypatch, cfg: Config, data: PreparedData, paths) -> None:
    """``train`` interrupted (KeyboardInterrupt) at its second validation, as a kill during epoch 2
    would stop it: ``last.pt`` holds epoch 1. The loop's ``evaluate`` is restored afterwards."""
    import pytest

    from agman.training import loop

    real_evaluate, calls = loop.evaluate, {"n": 0}

    def stop_at_second_validation(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("simulated interruption during epoch 2")
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(loop, "evaluate", stop_at_second_validation)
    with pytest.raises(KeyboardInterrupt):
        loop.train(cfg, data, paths)
    monkeypatch.setattr(loop, "evaluate", real_evaluate)
