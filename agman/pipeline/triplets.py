"""Stage ``triplets@<slot>``: one file of training triplets per epoch
(``data/<slot>/triplets/epoch_XXX.npy``), sampled as ASEN does, or taken from the CSN lists."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from agman.config import Config
from agman.data.prepared import read_prepared
from agman.data.triplets import sample_triplets, take_listed_triplets
from agman.io import write_folder_atomically
from agman.pipeline.layout import SlotPaths

log = logging.getLogger(__name__)


def run(cfg: Config, slot: str) -> None:
    out = SlotPaths(slot).triplets
    data = read_prepared(SlotPaths(slot).cache)
    n, seed = cfg.triplets.per_epoch, cfg.triplets.seed

    def write(tmp: Path) -> None:
        tmp.mkdir(parents=True)
        for epoch in range(cfg.train.epochs):
            if data.task == "retrieval":
                triplets = sample_triplets(data.table, data.attributes, n, seed, epoch)
            else:
                triplets = take_listed_triplets(data.triplets["train"], n, seed, epoch)
            np.save(tmp / f"epoch_{epoch:03d}.npy", triplets)

    write_folder_atomically(out, write)
    log.info("%d epochs x %d triplets written to %s", cfg.train.epochs, n, out)
