"""Each stage's slice of the resolved config: what ``resolve`` writes to ``build/params`` and the
stage depends on, so that a parameter change reruns exactly the stages that read it."""

from __future__ import annotations

from agman.config import Config, to_dict
from agman.data.registry import dataset_spec
from agman.models import model_params
from agman.pipeline.matrix import cell_config, slot_config


def slot_params(cfg: Config, slot: str) -> dict[str, dict]:
    """The part of a slot's config each data stage depends on."""
    d = slot_config(cfg, slot).data
    spec = dataset_spec(d.dataset)
    download = {"dataset": d.dataset, "root": d.root}
    if spec.demo:
        download["demo"] = to_dict(d.demo)
    prepare = {"dataset": d.dataset, "root": d.root}
    if spec.task == "retrieval":  # Zappos50k's triplet task always uses the CSN split
        prepare["split"] = to_dict(d.split)
    return {
        "download": download,
        "prepare": prepare,
        "cache": {"root": d.root, "image_size": d.image_size, "cache": to_dict(d.cache)},
        "triplets": {**to_dict(cfg.triplets), "epochs": cfg.train.epochs},
    }


def cell_params(cfg: Config, cell: str) -> dict[str, dict]:
    """The part of a cell's config its stage depends on, in two parts (training, evaluation);
    seed-independent but for ``seeds``: the stage runs every seed. Of the ``model`` block only
    the keys the variant's model reads (``model_params``)."""
    c = cell_config(cfg, cell, cfg.train.seeds[0])
    d = c.data
    train = {k: v for k, v in to_dict(c.train).items() if k != "seed"}
    if c.train.nproc == 1:  # the multi-process knobs cannot change a single-process run
        train = {k: v for k, v in train.items() if k not in ("nproc", "sync_bn")}
    return {
        # Only the data fields training reads: the split and the demo settings reach it through
        # data/<slot>/cache, so a change there that leaves the data unchanged retrains nothing.
        "train": {"data": {"dataset": d.dataset, "root": d.root, "image_size": d.image_size,
                           "num_workers": d.num_workers},
                  "model": model_params(c.model), "loss": to_dict(c.loss), "train": train, "eval": to_dict(c.eval)},
        "evaluate": {"eval": to_dict(c.eval), "data": {"root": d.root, "image_size": d.image_size,
                                                        "num_workers": d.num_workers},
                     "margin": c.loss.margin, "device": c.train.device, "amp_dtype": c.train.amp_dtype,
                     "seeds": list(c.train.seeds)},
    }
