"""The logic behind each DVC stage; ``stages/*.py`` are thin entry points over it.

Stages and what they read (``build/params/<stage>.json`` holds exactly that part of the
resolved config, so ``dvc repro`` reruns just the stages a change reaches):

    resolve   params.yaml                    -> build/params/*.json
    download  data.dataset/root (+ data.demo) -> data.root in its genuine layout, data/download.json
    prepare   data.dataset/root/split        -> data/prepared/  (parsed, split; see agman.data.prepared)
    cache     data.image_size/cache          -> data/cache/     (prepared + resized image cache)
    triplets  triplets, train.epochs         -> data/triplets/epoch_XXX.npy
    train     data, model, loss, train       -> runs/train/{best,last}.pt, reports/train_curves.csv
    evaluate  eval (+ best.pt)               -> reports/metrics.json

The raw data under ``data.root`` is not a DVC output (a second 30 GB copy in the DVC cache helps
no one); ``data/download.json``, its manifest (file count and bytes, archive hashes), stands for
it, so a changed download reruns what follows.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from agman.config import Config, flatten, load_params, to_dict

log = logging.getLogger("agman")

PARAMS_DIR = Path("build/params")
DOWNLOAD_MANIFEST = Path("data/download.json")
PREPARED_DIR = Path("data/prepared")
CACHE_DIR = Path("data/cache")
TRIPLET_DIR = Path("data/triplets")
TRAIN_DIR = Path("runs/train")
CURVES = Path("reports/train_curves.csv")
METRICS = Path("reports/metrics.json")


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")


def dataset_kind(dataset: str) -> str:
    """The genuine format a dataset name is in: a demo stand-in shares its real dataset's."""
    return dataset.removeprefix("demo_")


def stage_params(cfg: Config) -> dict[str, dict]:
    """The part of the resolved config each stage depends on."""
    d = cfg.data
    download = {"dataset": d.dataset, "root": d.root}
    if d.dataset.startswith("demo_"):
        download["demo"] = to_dict(d.demo)
    prepare = {"dataset": d.dataset, "root": d.root}
    if dataset_kind(d.dataset) != "zappos":  # Zappos50k always uses the CSN split
        prepare["split"] = to_dict(d.split)
    return {
        "download": download,
        "prepare": prepare,
        "cache": {"root": d.root, "image_size": d.image_size, "cache": to_dict(d.cache)},
        "triplets": {**to_dict(cfg.triplets), "epochs": cfg.train.epochs},
        # Only the data fields training reads: the split and the demo settings reach it through
        # data/cache, so a change there that leaves the data unchanged retrains nothing.
        "train": {"data": {"dataset": d.dataset, "root": d.root, "image_size": d.image_size,
                           "num_workers": d.num_workers},
                  "model": to_dict(cfg.model), "loss": to_dict(cfg.loss), "train": to_dict(cfg.train),
                  "eval": to_dict(cfg.eval)},
        "evaluate": {"eval": to_dict(cfg.eval), "data": {"root": d.root, "image_size": d.image_size,
                                                          "num_workers": d.num_workers},
                     "margin": cfg.loss.margin, "device": cfg.train.device, "amp_dtype": cfg.train.amp_dtype},
    }


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def run_resolve(params: Path = Path("params.yaml")) -> None:
    cfg, overridden = load_params(params)
    log.info("profile %s overrides: %s", cfg.profile, ", ".join(overridden) or "nothing")
    for stage, part in stage_params(cfg).items():
        _write_json(PARAMS_DIR / f"{stage}.json", part)
    _write_json(PARAMS_DIR / "config.json", to_dict(cfg))


def render_demo(cfg: Config) -> None:
    """Render the demo stand-in ``data.dataset`` into ``data.root`` (atomically replaced)."""
    d, demo = cfg.data, cfg.data.demo
    kind = dataset_kind(d.dataset)
    if kind == "fashionai":
        from agman.data.demo import write_demo_fashionai

        write_demo_fashionai(d.root, demo.images_per_attribute, demo.render_size, demo.seed, demo.jpeg_quality)
    elif kind == "deepfashion":
        from agman.data.demo_deepfashion import write_demo_deepfashion

        write_demo_deepfashion(d.root, demo.deepfashion_images, demo.render_size, demo.seed, demo.jpeg_quality)
    else:
        from agman.data.demo_zappos import write_demo_zappos

        # CSN's 200k/20k/40k proportions for train/val/test.
        per_condition = (demo.zappos_triplets, max(1, demo.zappos_triplets // 10), max(1, demo.zappos_triplets // 5))
        write_demo_zappos(d.root, demo.zappos_images, per_condition, demo.render_size, demo.seed, demo.jpeg_quality)


def run_download(cfg: Config) -> None:
    """Get ``data.root`` into its genuine layout and write its manifest; exit 2 with instructions
    when the user has to fetch something by hand."""
    from agman.data.acquire import MissingDataError, acquire, manifest

    d = cfg.data
    if d.dataset.startswith("demo_"):
        render_demo(cfg)
        record = {**manifest(dataset_kind(d.dataset), d.root), "demo": to_dict(d.demo)}
        log.info("demo %s rendered to %s", dataset_kind(d.dataset), d.root)
    else:
        try:
            record = acquire(d.dataset, d.root)
        except MissingDataError as err:
            print(f"\n{err}\n", file=sys.stderr)
            raise SystemExit(2) from None
    _write_json(DOWNLOAD_MANIFEST, record)


def _check_values(table: pd.DataFrame, attributes) -> None:
    """Stop on an attribute type with no image; count the values with none in one warning (the
    value stays in the list so that indices keep the published meaning)."""
    empty = []
    for a, attr in enumerate(attributes):
        present = set(table.loc[table["attribute_index"] == a, "value"])
        if not present:
            raise ValueError(f"attribute type {attr.name} has no annotated image")
        empty += [f"{attr.name}/{v}" for i, v in enumerate(attr.values) if i not in present]
    if empty:
        log.warning("%d attribute values have no image and can never be queried or anchor a triplet: %s%s",
                    len(empty), ", ".join(empty[:10]), " ..." if len(empty) > 10 else "")


def read_dataset(cfg: Config):
    """Parse ``data.root`` and split it: the prepared data (before the image cache)."""
    from agman.data.prepared import PreparedData

    d = cfg.data
    kind, method = dataset_kind(d.dataset), d.split.method
    if kind == "zappos":
        return _read_zappos(cfg)
    if method == "asen" and kind != "fashionai":
        raise ValueError(f"data.split.method: asen is FashionAI's published split; data.dataset is {d.dataset!r}")
    if method == "official" and kind != "deepfashion":
        raise ValueError(f"data.split.method: official is DeepFashion's evaluation partition; data.dataset is "
                         f"{d.dataset!r}")
    stats = {}
    if kind == "fashionai":
        from agman.data.attributes import dataset_attributes
        from agman.data.fashionai import read_fashionai_labels

        attributes = dataset_attributes(d.dataset)
        table = read_asen(cfg) if method == "asen" else read_fashionai_labels(d.root, attributes)
    else:
        from agman.data.deepfashion import read_deepfashion

        table, attributes, stats = read_deepfashion(d.root)
    _check_values(table, attributes)
    if method == "random":
        from agman.data.split import split_items

        table = split_items(table, d.split)
    elif method == "official":
        from agman.data.split import split_by_partition

        table = split_by_partition(table, d.split)
    meta = {"dataset": d.dataset, "stats": stats,
            "attributes": [{"name": a.name, "values": list(a.values)} for a in attributes]}
    return PreparedData(table, [a.name for a in attributes], "retrieval", meta=meta)


def _read_zappos(cfg: Config):
    from agman.data.prepared import PreparedData
    from agman.data.zappos import CONDITIONS, read_zappos

    table, triplets, stats = read_zappos(cfg.data.root)
    # CSN calls the validation split "val"; this project says "valid" everywhere.
    table["split"] = table["split"].replace({"val": "valid"})
    triplets = {{"val": "valid"}.get(s, s): t for s, t in triplets.items()}
    meta = {"dataset": cfg.data.dataset, "stats": stats,
            "attributes": [{"name": name, "values": []} for name in CONDITIONS]}
    return PreparedData(table, list(CONDITIONS), "triplets", triplets=triplets, meta=meta)


def read_asen(cfg: Config) -> pd.DataFrame:
    from agman.data.asen_split import read_asen_split
    from agman.data.attributes import FASHIONAI

    table = read_asen_split(cfg.data.split.asen_dir, FASHIONAI)
    missing = [p for p in table["path"].unique() if not (Path(cfg.data.root) / p).is_file()]
    if missing:
        raise FileNotFoundError(f"{cfg.data.split.asen_dir}: {len(missing)} images of the ASEN split are missing "
                                f"under data.root = {cfg.data.root}, first: {missing[0]}")
    return table


def run_prepare(cfg: Config) -> None:
    from agman.data.prepared import write_prepared

    data = read_dataset(cfg)
    write_prepared(PREPARED_DIR, data)
    table = data.table
    counts = table.groupby(["split", "role"]).size().to_dict() if "role" in table else \
        table.groupby("split").size().to_dict()
    log.info("prepared %d rows of %d images: %s", len(table), table["path"].nunique(),
             ", ".join(f"{'/'.join(k) if isinstance(k, tuple) else k}={n}" for k, n in counts.items()))
    for split, t in data.triplets.items():
        log.info("%s: %d triplets", split, len(t))


def run_cache(cfg: Config) -> None:
    """Decode every image of the prepared data once into the resized cache (agman.data.cache)."""
    from tqdm import tqdm

    from agman.data.prepared import cache_prepared, read_prepared

    d = cfg.data
    cache_prepared(read_prepared(PREPARED_DIR), d.root, CACHE_DIR, d.image_size, d.cache.format,
                   d.cache.jpeg_quality, d.num_workers,
                   progress=lambda it, total: tqdm(it, total=total, desc="cache", unit="img"))


def load_data():
    from agman.data.prepared import read_prepared

    data = read_prepared(CACHE_DIR)
    if data.cache is None:
        raise FileNotFoundError(f"{CACHE_DIR / 'images'}: image cache missing; run `dvc repro cache`")
    return data


def run_triplets(cfg: Config) -> None:
    import shutil

    from agman.data.prepared import read_prepared
    from agman.data.triplets import sample_triplets, take_listed_triplets

    data = read_prepared(CACHE_DIR)
    tmp = TRIPLET_DIR.with_name(TRIPLET_DIR.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    n, seed = cfg.triplets.per_epoch, cfg.triplets.seed
    for epoch in range(cfg.train.epochs):
        if data.task == "retrieval":
            triplets = sample_triplets(data.table, data.attributes, n, seed, epoch)
        else:
            triplets = take_listed_triplets(data.triplets["train"], n, seed, epoch)
        np.save(tmp / f"epoch_{epoch:03d}.npy", triplets)
    if TRIPLET_DIR.exists():
        shutil.rmtree(TRIPLET_DIR)
    os.replace(tmp, TRIPLET_DIR)
    log.info("%d epochs x %d triplets written to %s", cfg.train.epochs, n, TRIPLET_DIR)


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
    from agman.evaluation import SCORE
    from agman.training.loop import TrainPaths, train

    data = load_data()
    paths = TrainPaths(triplet_dir=TRIPLET_DIR, out_dir=TRAIN_DIR, curves=CURVES)
    state = train(cfg, data, paths, tracker_factory=_tracker_factory(cfg, "train"))
    log.info("best validation %s %.4f at epoch %d", SCORE[data.task], state.best_score, state.best_epoch)


def run_evaluate(cfg: Config) -> dict:
    import torch

    from agman.config import ModelConfig, from_dict
    from agman.evaluation import SCORE, evaluate, flat_metrics
    from agman.models import build_model
    from agman.training.checkpoint import load_checkpoint
    from agman.training.loop import autocast_context, pick_device

    data = load_data()
    ckpt = load_checkpoint(TRAIN_DIR / "best.pt")
    # The checkpoint's own model config rebuilds the network; its weights replace ImageNet's.
    model_cfg = from_dict(ModelConfig, {**ckpt["config"]["model"], "pretrained": False}, "model")
    device = pick_device(cfg.train.device)
    model = build_model(model_cfg, len(data.attributes)).to(device)
    model.load_state_dict(ckpt["model"])
    with torch.no_grad(), autocast_context(device, cfg.train.amp_dtype):
        test = evaluate(model, data, "test", cfg, device)
    score = SCORE[data.task]
    test.pop("score")
    metrics = {**test, "best_epoch": ckpt["epoch"], f"val_{score}": ckpt["val"][score]}
    _write_json(METRICS, metrics)
    if data.task == "retrieval":
        log.info("test MAP %.4f (macro %.4f) over %d queries", test["map"], test["map_macro"], test["n_queries"])
    else:
        log.info("test triplet accuracy %.4f, average loss %.4f over %d triplets", test["accuracy"], test["loss"],
                 test["n_triplets"])
    run_json = TRAIN_DIR / "run.json"
    parent = json.loads(run_json.read_text())["mlflow_run_id"] if run_json.is_file() else None
    factory = _tracker_factory(cfg, "evaluate", parent_run_id=parent)
    if factory is not None:
        run = factory(None)
        run.log_metrics(flat_metrics(test, "test"))
        run.log_artifact(METRICS)
        run.end()
    return metrics
