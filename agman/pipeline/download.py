"""Stage ``download@<slot>``: the slot's data in its genuine layout under ``data.root`` (a
stand-in rendered, Zappos50k fetched, FashionAI and DeepFashion extracted from the archives the
user placed in ``data/raw/<slot>/``) and its manifest, ``data/<slot>/download.json``."""

from __future__ import annotations

import logging
from pathlib import Path

from agman.config import Config
from agman.data.registry import dataset_spec, obtain
from agman.pipeline.entry import write_json
from agman.pipeline.layout import SlotPaths
from agman.pipeline.matrix import slot_config

log = logging.getLogger(__name__)


def run(cfg: Config, slot: str) -> None:
    """Obtain the slot's data and write its manifest; MissingDataError says what to fetch by hand,
    and from where (the entry point prints it as one line and exits with status 2)."""
    d = slot_config(cfg, slot).data
    paths = SlotPaths(slot)
    if not dataset_spec(d.dataset).demo and not Path(d.root).resolve().is_relative_to(paths.raw.resolve()):
        # dvc.yaml's deps cover data/raw/<slot>/ only: edits elsewhere would not rerun the stages.
        log.warning("data.root %s of slot %s lies outside %s/: `dvc repro` will not see changes to its files "
                    "(keep the dataset in %s/ and set datasets.%s.root to \"\")", d.root, slot, paths.raw, paths.raw,
                    slot)
    record = obtain(d)
    write_json(paths.manifest, record)
    log.info("%s ready in %s", d.dataset, d.root)
