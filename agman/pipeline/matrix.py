"""The matrix of table cells: each slot's data config and each cell's run config, built from the
loaded config tree (``agman.config.load``).

A slot (fashionai, deepfashion, zappos: one of the paper's datasets) uses one data source,
``datasets.<slot>``: the real dataset or its stand-in (a name of ``agman.data.registry``). A cell
is a slot x a model variant (``cells``); it runs once per seed of ``train.seeds``.
"""

from __future__ import annotations

import dataclasses

from agman.config import Config, ConfigError, variant_model
from agman.data.registry import DATASET_NAMES, dataset_spec


def slot_config(cfg: Config, slot: str) -> Config:
    """The config of a table slot's data stages: ``data.dataset``/``data.root`` (the dataset's
    default root when ``root`` is empty) and ``data.image_size`` where the slot sets one, from
    ``datasets.<slot>``."""
    if slot not in cfg.datasets:
        raise ConfigError(f"unknown table slot {slot!r} (slots: {', '.join(cfg.datasets)})")
    source = cfg.datasets[slot]
    if source.dataset not in DATASET_NAMES:
        raise ConfigError(f"datasets.{slot}.dataset: unknown dataset {source.dataset!r} "
                          f"(known: {', '.join(DATASET_NAMES)})")
    root = source.root or dataset_spec(source.dataset).default_root
    size = source.image_size or cfg.data.image_size
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, dataset=source.dataset, root=root,
                                                             image_size=size))


def cell_config(cfg: Config, cell: str, seed: int) -> Config:
    """The config one cell's training runs with: its slot's data, its variant's model, the seed."""
    if cell not in cfg.cells:
        raise ConfigError(f"unknown cell {cell!r} (cells: {', '.join(cfg.cells)})")
    if seed not in cfg.train.seeds:
        raise ConfigError(f"seed {seed} is not in train.seeds {list(cfg.train.seeds)}")
    out = slot_config(cfg, cfg.cells[cell].slot)
    return dataclasses.replace(out, model=variant_model(cfg, cfg.cells[cell].variant),
                               train=dataclasses.replace(cfg.train, seed=seed))
