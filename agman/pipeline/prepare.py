"""Stage ``prepare@<slot>``: parse the slot's data and split it (``data/<slot>/prepared/``)."""

from __future__ import annotations

import logging

from agman.config import Config
from agman.data.prepared import write_prepared
from agman.data.registry import read_dataset
from agman.pipeline.layout import SlotPaths
from agman.pipeline.matrix import slot_config

log = logging.getLogger(__name__)


def run(cfg: Config, slot: str) -> None:
    data = read_dataset(slot_config(cfg, slot).data)
    write_prepared(SlotPaths(slot).prepared, data)
    table = data.table
    counts = table.groupby(["split", "role"]).size().to_dict() if "role" in table else \
        table.groupby("split").size().to_dict()
    log.info("prepared %d rows of %d images: %s", len(table), table["path"].nunique(),
             ", ".join(f"{'/'.join(k) if isinstance(k, tuple) else k}={n}" for k, n in counts.items()))
    for split, t in data.triplets.items():
        log.info("%s: %d triplets", split, len(t))
