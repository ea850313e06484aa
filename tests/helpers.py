"""Helpers the tests import (fixtures live in conftest.py): the repository's paths and a tiny
real training run."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from agman.config import Config, DataConfig, EvalConfig, ModelConfig, TrainConfig, TripletsConfig
from agman.data.prepared import PreparedData

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def train_tiny_run(data: PreparedData, root: Path, out_dir: Path, curves: Path, name: str = "agman",
                   triplets: np.ndarray | None = None) -> Path:
    """One epoch of 2 batches of 8 triplets (ResNet-18, 32 px, embed_dim 16) on CPU: a real
    best.pt in seconds, for the figures and search tests. Returns the run folder."""
    # Imported here: every test session loads this file, most never train.
    from agman.data.triplets import sample_triplets
    from agman.training.loop import TrainPaths, train

    baseline = name != "agman"  # the baselines have neither part (as in params.yaml's variants)
    cfg = Config(
        data=DataConfig(dataset=data.meta["dataset"], root=str(root), image_size=32, num_workers=0),
        triplets=TripletsConfig(per_epoch=16),
        model=ModelConfig(name=name, backbone="resnet18", pretrained=False, embed_dim=16,
                          hierarchical=not baseline, cls_loss=not baseline),
        train=TrainConfig(epochs=1, batch_size=8, max_batches=2, lr=1e-3, device="cpu"),
        eval=EvalConfig(batch_size=64),
    )
    triplet_dir = out_dir.parent / f".{out_dir.name}-triplets"
    triplet_dir.mkdir(parents=True)
    if triplets is None:
        triplets = sample_triplets(data.table, data.attributes, 16, seed=0, epoch=0)
    np.save(triplet_dir / "epoch_000.npy", triplets)
    train(cfg, data, TrainPaths(triplet_dir=triplet_dir, out_dir=out_dir, curves=curves))
    return out_dir
