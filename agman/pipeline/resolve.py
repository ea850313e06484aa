"""Stage ``resolve``: params.yaml + the active profile -> each stage's slice of the config
(``build/params/<slot>/<stage>.json``, ``build/params/cells/<cell>/<stage>.json``, ``tables.json``,
``figures.json``) and the whole resolved config (``config.json``)."""

from __future__ import annotations

import logging
from pathlib import Path

from agman.config import load_params, to_dict
from agman.pipeline.entry import write_json
from agman.pipeline.layout import PARAMS_DIR
from agman.pipeline.params import cell_params, slot_params

log = logging.getLogger(__name__)


def run(params: Path = Path("params.yaml")) -> None:
    cfg, overridden = load_params(params)
    log.info("profile %s overrides: %s", cfg.profile, ", ".join(overridden) or "nothing")
    for slot in cfg.datasets:
        for stage, part in slot_params(cfg, slot).items():
            write_json(PARAMS_DIR / slot / f"{stage}.json", part)
    for cell in cfg.cells:
        for stage, part in cell_params(cfg, cell).items():
            write_json(PARAMS_DIR / "cells" / cell / f"{stage}.json", part)
    datasets = {k: to_dict(v) for k, v in cfg.datasets.items()}
    write_json(PARAMS_DIR / "tables.json", {"seeds": list(cfg.train.seeds), "profile": cfg.profile,
                                            "datasets": datasets})
    # The figures read the first seed's runs; which runs exist is covered by their `runs` dependency.
    write_json(PARAMS_DIR / "figures.json", {"seed": cfg.train.seeds[0], "device": cfg.train.device,
                                             "datasets": datasets})
    write_json(PARAMS_DIR / "config.json", to_dict(cfg))
