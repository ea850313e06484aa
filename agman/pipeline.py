"""The logic behind each DVC stage; ``stages/*.py`` are thin entry points over it.

Stages and what they read (``build/params/<stage>.json`` holds exactly that part of the
resolved config, so ``dvc repro`` reruns just the stages a change reaches):

    resolve    params.yaml              -> build/params/*.json
    demo_data  data.demo                -> data/demo/fashionai            (FashionAI layout)
    prepare    data.dataset/root/split  -> data/prepared/{items.csv, attributes.json}
    triplets   triplets, train.epochs   -> data/triplets/epoch_XXX.npy
    train      data, model, loss, train -> runs/train/{best,last}.pt, reports/train_curves.csv
    evaluate   eval (+ best.pt)         -> reports/metrics.json
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from agman.config import Config, flatten, load_params, to_dict

log = logging.getLogger("agman")

PARAMS_DIR = Path("build/params")
DEMO_DIR = Path("data/demo")
PREPARED_DIR = Path("data/prepared")
TRIPLET_DIR = Path("data/triplets")
TRAIN_DIR = Path("runs/train")
CURVES = Path("reports/train_curves.csv")
METRICS = Path("reports/metrics.json")


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")


def stage_params(cfg: Config) -> dict[str, dict]:
    """The part of the resolved config each stage depends on."""
    d = cfg.data
    return {
        "demo_data": to_dict(d.demo),
        "prepare": {"dataset": d.dataset, "root": d.root, "split": to_dict(d.split)},
        "triplets": {**to_dict(cfg.triplets), "epochs": cfg.train.epochs},
        # Only the data fields training reads: the split and the demo settings reach it through
        # data/prepared, so a change there that leaves the table unchanged retrains nothing.
        "train": {"data": {"dataset": d.dataset, "root": d.root, "image_size": d.image_size,
                           "num_workers": d.num_workers},
                  "model": to_dict(cfg.model), "loss": to_dict(cfg.loss), "train": to_dict(cfg.train),
                  "eval": to_dict(cfg.eval)},
        "evaluate": {"eval": to_dict(cfg.eval), "data": {"root": d.root, "image_size": d.image_size,
                                                          "num_workers": d.num_workers},
                     "device": cfg.train.device, "amp_dtype": cfg.train.amp_dtype},
    }


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def _replace_dir(tmp: Path, final: Path) -> None:
    """Swap a fully written temp folder into place, so readers never see half a folder."""
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)


def run_resolve(params: Path = Path("params.yaml")) -> None:
    cfg, overridden = load_params(params)
    log.info("profile %s overrides: %s", cfg.profile, ", ".join(overridden) or "nothing")
    for stage, part in stage_params(cfg).items():
        _write_json(PARAMS_DIR / f"{stage}.json", part)
    _write_json(PARAMS_DIR / "config.json", to_dict(cfg))


def run_demo_data(cfg: Config) -> None:
    from agman.data.demo import write_demo_fashionai

    d = cfg.data.demo
    write_demo_fashionai(DEMO_DIR / "fashionai", d.images_per_attribute, d.render_size, d.seed, d.jpeg_quality)
    log.info("demo FashionAI rendered to %s", DEMO_DIR / "fashionai")


def read_dataset(cfg: Config) -> tuple[pd.DataFrame, list]:
    from agman.data.attributes import dataset_attributes
    from agman.data.fashionai import read_fashionai_labels

    attributes = dataset_attributes(cfg.data.dataset)
    return read_fashionai_labels(cfg.data.root, attributes), list(attributes)


def read_asen(cfg: Config) -> tuple[pd.DataFrame, list]:
    from agman.data.asen_split import read_asen_split
    from agman.data.attributes import FASHIONAI

    if cfg.data.dataset != "fashionai":
        raise ValueError(f"data.split.method: 'asen' is FashionAI's published split; data.dataset is "
                         f"{cfg.data.dataset!r}")
    table = read_asen_split(cfg.data.split.asen_dir, FASHIONAI)
    missing = [p for p in table["path"].unique() if not (Path(cfg.data.root) / p).is_file()]
    if missing:
        raise FileNotFoundError(f"{cfg.data.split.asen_dir}: {len(missing)} images of the ASEN split are missing "
                                f"under data.root = {cfg.data.root}, first: {missing[0]}")
    return table, list(FASHIONAI)


def run_prepare(cfg: Config) -> None:
    from agman.data.split import split_items

    if cfg.data.split.method == "asen":
        table, attributes = read_asen(cfg)
    else:
        table, attributes = read_dataset(cfg)
        table = split_items(table, cfg.data.split)
    tmp = PREPARED_DIR.with_name(PREPARED_DIR.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    table.to_csv(tmp / "items.csv", index=False)
    _write_json(tmp / "attributes.json", {
        "dataset": cfg.data.dataset,
        "attributes": [{"name": a.name, "values": list(a.values)} for a in attributes],
    })
    _replace_dir(tmp, PREPARED_DIR)
    counts = table.groupby(["split", "role"]).size().to_dict()
    log.info("prepared %d images: %s", len(table), ", ".join(f"{s}/{r}={n}" for (s, r), n in counts.items()))


def load_prepared() -> tuple[pd.DataFrame, list[str]]:
    items, meta = PREPARED_DIR / "items.csv", PREPARED_DIR / "attributes.json"
    for path in (items, meta):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing; run `dvc repro prepare` first")
    names = [a["name"] for a in json.loads(meta.read_text())["attributes"]]
    return pd.read_csv(items), names


def run_triplets(cfg: Config) -> None:
    from agman.data.triplets import sample_triplets

    table, names = load_prepared()
    tmp = TRIPLET_DIR.with_name(TRIPLET_DIR.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for epoch in range(cfg.train.epochs):
        triplets = sample_triplets(table, names, cfg.triplets.per_epoch, cfg.triplets.seed, epoch)
        np.save(tmp / f"epoch_{epoch:03d}.npy", triplets)
    _replace_dir(tmp, TRIPLET_DIR)
    log.info("%d epochs x %d triplets written to %s", cfg.train.epochs, cfg.triplets.per_epoch, TRIPLET_DIR)


def _tracker_factory(cfg: Config, stage: str, parent_run_id: str | None = None):
    if os.environ.get("AGMAN_NO_MLFLOW"):
        return None
    from agman.tracking import MlflowRun

    def new_run() -> MlflowRun:
        run = MlflowRun(stage, flatten(cfg), parent_run_id=parent_run_id,
                        tags={"dataset": cfg.data.dataset, "variant": cfg.model.name, "profile": cfg.profile})
        run.log_dict(to_dict(cfg), "config.json")
        return run

    def factory(run_id: str | None):
        if run_id is None:
            return new_run()
        try:
            return MlflowRun(stage, {}, run_id=run_id)
        except Exception as err:  # e.g. mlflow.db deleted since the interrupted run
            log.warning("cannot reopen MLflow run %s (%s); logging the resumed training to a new run", run_id, err)
            return new_run()

    return factory


def run_train(cfg: Config) -> None:
    from agman.training.loop import TrainPaths, train

    table, names = load_prepared()
    paths = TrainPaths(triplet_dir=TRIPLET_DIR, out_dir=TRAIN_DIR, curves=CURVES)
    state = train(cfg, table, names, paths, tracker_factory=_tracker_factory(cfg, "train"))
    log.info("best validation MAP %.4f at epoch %d", state.best_map, state.best_epoch)


def run_evaluate(cfg: Config) -> dict:
    import torch

    from agman.config import ModelConfig, from_dict
    from agman.evaluation.retrieval import evaluate_split
    from agman.models import build_model
    from agman.training.checkpoint import load_checkpoint
    from agman.training.loop import autocast_context, pick_device

    table, names = load_prepared()
    ckpt = load_checkpoint(TRAIN_DIR / "best.pt")
    # The checkpoint's own model config rebuilds the network; its weights replace ImageNet's.
    model_cfg = from_dict(ModelConfig, {**ckpt["config"]["model"], "pretrained": False}, "model")
    device = pick_device(cfg.train.device)
    model = build_model(model_cfg, len(names)).to(device)
    model.load_state_dict(ckpt["model"])
    with torch.no_grad(), autocast_context(device, cfg.train.amp_dtype):
        test = evaluate_split(model, table, "test", names, cfg.data.root, cfg.data.image_size,
                              cfg.eval.batch_size, cfg.eval.chunk_size, device, cfg.data.num_workers)
    metrics = {**test, "best_epoch": ckpt["epoch"], "val_map": ckpt["val"]["map"]}
    _write_json(METRICS, metrics)
    log.info("test MAP %.4f (macro %.4f) over %d queries", test["map"], test["map_macro"], test["n_queries"])
    run_json = TRAIN_DIR / "run.json"
    parent = json.loads(run_json.read_text())["mlflow_run_id"] if run_json.is_file() else None
    factory = _tracker_factory(cfg, "evaluate", parent_run_id=parent)
    if factory is not None:
        run = factory(None)
        run.log_metrics({"test_map": test["map"], "test_map_macro": test["map_macro"],
                         **{f"test_map_{k}": v for k, v in test["map_per_attribute"].items()}})
        run.log_artifact(METRICS)
        run.end()
    return metrics
