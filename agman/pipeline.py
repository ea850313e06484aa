"""The logic behind each DVC stage; ``stages/*.py`` are thin entry points over it.

The pipeline fans out over the three table slots (``datasets``: fashionai, deepfashion, zappos)
and over the table cells (``cells``: slot x model variant), each cell trained and evaluated once
per seed of ``train.seeds``. Stages and what they read (``build/params/...json`` holds exactly
that part of the resolved config, so ``dvc repro`` reruns just the stages a change reaches):

    resolve          params.yaml                 -> build/params/<slot>/*.json, build/params/cells/<cell>/*.json
    download@<slot>  datasets.<slot> (+ data.demo) -> the data in its genuine layout, data/<slot>/download.json
    prepare@<slot>   data.split                  -> data/<slot>/prepared/  (parsed, split; agman.data.prepared)
    cache@<slot>     data.image_size/cache       -> data/<slot>/cache/     (prepared + resized image cache)
    triplets@<slot>  triplets, train.epochs      -> data/<slot>/triplets/epoch_XXX.npy
    cell@<cell>      model (+ variant), loss, train, eval -> runs/<slot>/<variant>/seed<k>/ (trained),
                     reports/curves/<slot>/<variant>/, reports/cells/<slot>/<variant>/seed<k>/ and
                     reports/metrics/<cell>.json (evaluated on the test split)
    tables           every cell's report         -> reports/tables/
    figures          the first seed's runs, caches -> reports/figures/ (Figures 5-8, validation curves)

The raw data under ``data.root`` is not a DVC output (a second 30 GB copy in the DVC cache helps
no one); ``data/<slot>/download.json``, its manifest (file count and bytes, archive hashes),
stands for it, so a changed download reruns what follows.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from agman.config import Config, cell_config, flatten, load_config, load_params, slot_config, to_dict

log = logging.getLogger("agman")

PARAMS_DIR = Path("build/params")
TABLES_DIR = Path("reports/tables")
FIGURES_DIR = Path("reports/figures")


@dataclass(frozen=True)
class SlotPaths:
    """Where a table slot's data stages write."""

    slot: str

    @property
    def root(self) -> Path:
        return Path("data") / self.slot

    @property
    def manifest(self) -> Path:
        return self.root / "download.json"

    @property
    def prepared(self) -> Path:
        return self.root / "prepared"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def triplets(self) -> Path:
        return self.root / "triplets"


@dataclass(frozen=True)
class CellPaths:
    """Where a cell's train and evaluate stages write; one subfolder or file per seed."""

    slot: str
    variant: str

    @property
    def name(self) -> str:
        return f"{self.slot}-{self.variant}"

    def run(self, seed: int) -> Path:
        return Path("runs") / self.slot / self.variant / f"seed{seed}"

    def curves(self, seed: int) -> Path:
        return Path("reports/curves") / self.slot / self.variant / f"seed{seed}.csv"

    def report(self, seed: int) -> Path:
        return Path("reports/cells") / self.slot / self.variant / f"seed{seed}"

    @property
    def metrics(self) -> Path:
        return Path("reports/metrics") / f"{self.name}.json"


def cell_paths(cfg: Config, cell: str) -> CellPaths:
    return CellPaths(cfg.cells[cell].slot, cfg.cells[cell].variant)


def setup_logging() -> None:
    # Under torchrun only rank 0 says what happens; the other ranks report warnings and errors.
    level = logging.INFO if int(os.environ.get("RANK", "0")) == 0 else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s: %(message)s")


def stage_main(run, usage: str, argv: list[str] | None = None) -> None:
    """A per-slot or per-cell stage's entry point, ``python -m stages.<stage> <key>``: calls
    ``run(config, key)``; anything but one argument exits with ``usage``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit(usage)
    setup_logging()
    run(load_config(), args[0])


def dataset_kind(dataset: str) -> str:
    """The genuine format a dataset name is in: a demo stand-in shares its real dataset's."""
    return dataset.removeprefix("demo_")


def slot_params(cfg: Config) -> dict[str, dict]:
    """The part of a slot's config (``slot_config``) each data stage depends on."""
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
    }


def cell_params(cfg: Config, cell: str) -> dict[str, dict]:
    """The part of a cell's config its stage depends on, in two parts (training, evaluation);
    seed-independent but for ``seeds``: the stage runs every seed."""
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
                  "model": to_dict(c.model), "loss": to_dict(c.loss), "train": train, "eval": to_dict(c.eval)},
        "evaluate": {"eval": to_dict(c.eval), "data": {"root": d.root, "image_size": d.image_size,
                                                        "num_workers": d.num_workers},
                     "margin": c.loss.margin, "device": c.train.device, "amp_dtype": c.train.amp_dtype,
                     "seeds": list(c.train.seeds)},
    }


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def run_resolve(params: Path = Path("params.yaml")) -> None:
    cfg, overridden = load_params(params)
    log.info("profile %s overrides: %s", cfg.profile, ", ".join(overridden) or "nothing")
    for slot in cfg.datasets:
        for stage, part in slot_params(slot_config(cfg, slot)).items():
            _write_json(PARAMS_DIR / slot / f"{stage}.json", part)
    for cell in cfg.cells:
        for stage, part in cell_params(cfg, cell).items():
            _write_json(PARAMS_DIR / "cells" / cell / f"{stage}.json", part)
    _write_json(PARAMS_DIR / "tables.json", {"seeds": list(cfg.train.seeds), "profile": cfg.profile,
                                             "datasets": {k: to_dict(v) for k, v in cfg.datasets.items()}})
    # The figures read the first seed's runs; which runs exist is covered by their `runs` dependency.
    _write_json(PARAMS_DIR / "figures.json", {"seed": cfg.train.seeds[0], "device": cfg.train.device,
                                              "datasets": {k: to_dict(v) for k, v in cfg.datasets.items()}})
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


def run_download(cfg: Config, slot: str) -> None:
    """Get the slot's ``data.root`` into its genuine layout and write its manifest; exit 2 with
    instructions when the user has to fetch something by hand."""
    from agman.data.acquire import MissingDataError, acquire, images_sha256, manifest

    cfg = slot_config(cfg, slot)
    d = cfg.data
    if d.dataset.startswith("demo_"):
        render_demo(cfg)
        kind = dataset_kind(d.dataset)
        record = {**manifest(kind, d.root), "demo": to_dict(d.demo), "images_sha256": images_sha256(kind, d.root)}
        log.info("demo %s rendered to %s", kind, d.root)
    else:
        try:
            record = acquire(d.dataset, d.root)
        except MissingDataError as err:
            print(f"\n{err}\n", file=sys.stderr)
            raise SystemExit(2) from None
    _write_json(SlotPaths(slot).manifest, record)


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
    from agman.data.zappos import CONDITION_NAMES, read_zappos

    table, triplets, stats = read_zappos(cfg.data.root)
    # CSN calls the validation split "val"; this project says "valid" everywhere.
    table["split"] = table["split"].replace({"val": "valid"})
    triplets = {{"val": "valid"}.get(s, s): t for s, t in triplets.items()}
    meta = {"dataset": cfg.data.dataset, "stats": stats,
            "attributes": [{"name": name, "values": []} for name in CONDITION_NAMES]}
    return PreparedData(table, list(CONDITION_NAMES), "triplets", triplets=triplets, meta=meta)


def read_asen(cfg: Config) -> pd.DataFrame:
    from agman.data.asen_split import read_asen_split
    from agman.data.attributes import FASHIONAI

    table = read_asen_split(cfg.data.split.asen_dir, FASHIONAI)
    missing = [p for p in table["path"].unique() if not (Path(cfg.data.root) / p).is_file()]
    if missing:
        raise FileNotFoundError(f"{cfg.data.split.asen_dir}: {len(missing)} images of the ASEN split are missing "
                                f"under data.root = {cfg.data.root}, first: {missing[0]}")
    return table


def run_prepare(cfg: Config, slot: str) -> None:
    from agman.data.prepared import write_prepared

    data = read_dataset(slot_config(cfg, slot))
    write_prepared(SlotPaths(slot).prepared, data)
    table = data.table
    counts = table.groupby(["split", "role"]).size().to_dict() if "role" in table else \
        table.groupby("split").size().to_dict()
    log.info("prepared %d rows of %d images: %s", len(table), table["path"].nunique(),
             ", ".join(f"{'/'.join(k) if isinstance(k, tuple) else k}={n}" for k, n in counts.items()))
    for split, t in data.triplets.items():
        log.info("%s: %d triplets", split, len(t))


def run_cache(cfg: Config, slot: str) -> None:
    """Decode every image of the prepared data once into the resized cache (agman.data.cache)."""
    from tqdm import tqdm

    from agman.data.prepared import cache_prepared, read_prepared

    d = slot_config(cfg, slot).data
    paths = SlotPaths(slot)
    cache_prepared(read_prepared(paths.prepared), d.root, paths.cache, d.image_size, d.cache.format,
                   d.cache.jpeg_quality, d.num_workers,
                   progress=lambda it, total: tqdm(it, total=total, desc="cache", unit="img"))


def load_data(slot: str):
    from agman.data.prepared import read_prepared

    folder = SlotPaths(slot).cache
    data = read_prepared(folder)
    if data.cache is None:
        raise FileNotFoundError(f"{folder / 'images'}: image cache missing; run `dvc repro cache@{slot}`")
    return data


def run_triplets(cfg: Config, slot: str) -> None:
    from agman.data.prepared import read_prepared
    from agman.data.triplets import sample_triplets, take_listed_triplets

    out = SlotPaths(slot).triplets
    data = read_prepared(SlotPaths(slot).cache)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    n, seed = cfg.triplets.per_epoch, cfg.triplets.seed
    for epoch in range(cfg.train.epochs):
        if data.task == "retrieval":
            triplets = sample_triplets(data.table, data.attributes, n, seed, epoch)
        else:
            triplets = take_listed_triplets(data.triplets["train"], n, seed, epoch)
        np.save(tmp / f"epoch_{epoch:03d}.npy", triplets)
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    log.info("%d epochs x %d triplets written to %s", cfg.train.epochs, n, out)


def _tracker_factory(cfg: Config, stage: str, cell: str, parent_run_id: str | None = None):
    """MLflow runs of one cell and seed, tagged so the UI can filter a table's rows."""
    if os.environ.get("AGMAN_NO_MLFLOW"):
        return None
    from agman.reports.tables import tables_of
    from agman.tracking import MlflowRun

    slot, variant = cfg.cells[cell].slot, cfg.cells[cell].variant
    tables = tables_of(slot, variant)
    tags = {"dataset": slot, "source": cfg.data.dataset, "variant": variant, "cell": cell,
            "seed": str(cfg.train.seed), "profile": cfg.profile, "tables": " ".join(map(str, tables)),
            **{f"table_{t}": "true" for t in tables}}
    # The run's own settings; the other cells' and slots' entries are not what this run used.
    run_cfg = {k: v for k, v in to_dict(cfg).items() if k not in ("datasets", "variants", "cells")}

    def new_run() -> MlflowRun:
        run = MlflowRun(stage, flatten(run_cfg), parent_run_id=parent_run_id, tags=tags)
        run.log_dict(run_cfg, "config.json")
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


def run_train(cfg: Config, cell: str) -> None:
    """Train a cell once per seed of ``train.seeds``; each seed resumes on its own.

    With ``train.nproc`` > 1 and not already under torchrun, the stage runs itself again under
    ``torchrun --standalone --nproc_per_node <nproc>`` and waits for it. With ``$AGMAN_GPUS`` set
    (parallel jobs, README "Several GPUs") it first takes ``nproc`` GPUs of that pool that no
    other job holds.
    """
    from agman.evaluation import SCORE
    from agman.training import distributed
    from agman.training.loop import TrainPaths, train

    if not distributed.launched():
        distributed.claim_gpus(cfg.train.nproc)  # before anything asks CUDA for its devices
        if cfg.train.nproc > 1:
            _relaunch_under_torchrun(cfg.train.nproc, cell)
            return
    paths = cell_paths(cfg, cell)
    data = load_data(paths.slot)
    try:
        for seed in cfg.train.seeds:
            run_cfg = cell_config(cfg, cell, seed)
            state = train(run_cfg, data, TrainPaths(triplet_dir=SlotPaths(paths.slot).triplets,
                                                    out_dir=paths.run(seed), curves=paths.curves(seed)),
                          tracker_factory=_tracker_factory(run_cfg, "train", cell))
            log.info("%s seed %d: best validation %s %.4f at epoch %d", cell, seed, SCORE[data.task],
                     state.best_score, state.best_epoch)
    finally:
        distributed.teardown()


def _relaunch_under_torchrun(nproc: int, cell: str) -> None:
    """``python -m stages.cell <cell>`` again, as ``nproc`` processes under torchrun (they train;
    the launching process evaluates once they are done)
    (``--standalone``: a free local port, so parallel jobs do not collide)."""
    import subprocess

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "stages.cell", cell]
    log.info("train.nproc = %d: %s", nproc, " ".join(cmd))
    rc = subprocess.run(cmd, check=False).returncode
    if rc:
        raise SystemExit(rc)


def _evaluate_seed(cfg: Config, cell: str, data, seed: int) -> dict:
    import torch

    from agman.config import ModelConfig, from_dict
    from agman.evaluation import SCORE, evaluate, flat_metrics
    from agman.io import write_folder_atomically
    from agman.models import build_model
    from agman.training.checkpoint import load_checkpoint
    from agman.device import autocast_context, pick_device

    paths = cell_paths(cfg, cell)
    run_dir = paths.run(seed)
    ckpt = load_checkpoint(run_dir / "best.pt")
    # The checkpoint's own model config rebuilds the network; its weights replace ImageNet's.
    model_cfg = from_dict(ModelConfig, {**ckpt["config"]["model"], "pretrained": False}, "model")
    device = pick_device(cfg.train.device)
    model = build_model(model_cfg, len(data.attributes)).to(device)
    model.load_state_dict(ckpt["model"])
    with torch.no_grad(), autocast_context(device, cfg.train.amp_dtype):
        test = evaluate(model, data, "test", cfg, device)
    score = SCORE[data.task]
    test.pop("score")
    per_item = test.pop("per_item")
    metrics = {**test, "best_epoch": ckpt["epoch"], f"val_{score}": ckpt["val"][score]}
    report = paths.report(seed)

    def write_report(tmp: Path) -> None:
        _write_json(tmp / "metrics.json", metrics)  # makes the folder
        per_item.to_csv(tmp / "per_item.csv", index=False)
        _write_json(tmp / "cell.json", {"dataset": paths.slot, "source": cfg.data.dataset, "variant": paths.variant,
                                        "seed": seed, "profile": cfg.profile, "attributes": data.attributes})

    write_folder_atomically(report, write_report)
    if data.task == "retrieval":
        log.info("%s seed %d: test MAP %.4f (macro %.4f) over %d queries", cell, seed, test["map"], test["map_macro"],
                 test["n_queries"])
    else:
        log.info("%s seed %d: test triplet accuracy %.4f, average loss %.4f over %d triplets", cell, seed,
                 test["accuracy"], test["loss"], test["n_triplets"])
    run_json = run_dir / "run.json"
    parent = json.loads(run_json.read_text())["mlflow_run_id"] if run_json.is_file() else None
    factory = _tracker_factory(cfg, "evaluate", cell, parent_run_id=parent)
    if factory is not None:
        run = factory(None)
        run.log_metrics(flat_metrics(test, "test"))
        run.log_artifact(report / "metrics.json")
        run.end()
    return metrics


def mean_over_seeds(per_seed: list[dict]) -> dict:
    """Every numeric leaf averaged over seeds (nested dicts kept); ``n_seeds`` added."""
    def mean(values):
        if isinstance(values[0], dict):
            return {k: mean([v[k] for v in values]) for k in values[0]}
        if all(v == values[0] for v in values):
            return values[0]
        return float(np.mean(values))

    return {**mean(per_seed), "n_seeds": len(per_seed)}


def run_evaluate(cfg: Config, cell: str) -> dict:
    """Evaluate every seed of a cell on the test split; the DVC metrics file holds their mean."""
    paths = cell_paths(cfg, cell)
    data = load_data(paths.slot)
    per_seed = [_evaluate_seed(cell_config(cfg, cell, seed), cell, data, seed) for seed in cfg.train.seeds]
    metrics = mean_over_seeds(per_seed)
    _write_json(paths.metrics, metrics)
    return metrics


def run_cell(cfg: Config, cell: str) -> None:
    """A table cell's stage: train every seed (a finished run of the same config, data and
    training code is reused, so a change to the evaluation code only re-evaluates), then evaluate."""
    from agman.training import distributed

    run_train(cfg, cell)
    if not distributed.launched():  # under torchrun the ranks only train; their launcher evaluates
        run_evaluate(cfg, cell)


def run_tables(cfg: Config) -> None:
    from agman.reports.tables import write_tables

    written = write_tables(Path("reports/cells"), TABLES_DIR, seeds=tuple(cfg.train.seeds))
    log.info("wrote %d table files to %s", len(written), TABLES_DIR)


def run_figures(cfg: Config, slots: list[str] | None = None) -> list[Path]:
    """Figures 5-8 and the validation curves from the first seed's run of each slot's cells.

    AG-MAN's run of every slot is required (it draws Figures 5, 7 and 8); the baselines join
    Figure 6 and every variant the curves when they have a run. The folder is replaced as a whole;
    each PNG is also an artifact of one MLflow run tagged stage=figures.
    """
    from agman.io import write_folder_atomically
    from agman.reports.figures import SlotRuns, slot_figures
    from agman.reports.tables import BASELINES

    seed = cfg.train.seeds[0]
    slots = list(cfg.datasets) if slots is None else slots
    for slot in slots:  # every slot checked before minutes of drawing
        checkpoint = CellPaths(slot, "agman").run(seed) / "best.pt"
        if not checkpoint.is_file():
            raise FileNotFoundError(f"{checkpoint}: AG-MAN's checkpoint of slot {slot} (seed {seed}) is missing; the "
                                    f"figures need it: run `dvc repro cell@{slot}-agman`")
    written: list[tuple[Path, float]] = []

    def render(tmp: Path) -> None:
        for slot in slots:
            variants = ["agman"] + [c.variant for c in cfg.cells.values() if c.slot == slot and c.variant != "agman"]
            checkpoints, curves = {}, {}
            for variant in variants:
                paths = CellPaths(slot, variant)
                # Figure 6 compares the methods, as the paper's does; the ablations get curves only.
                method = variant in ("agman", *BASELINES)
                if method and (paths.run(seed) / "best.pt").is_file():
                    checkpoints[variant] = paths.run(seed) / "best.pt"
                elif method:
                    log.info("%s: no run of %s (seed %d); left out of the figures", slot, variant, seed)
                if paths.curves(seed).is_file():
                    curves[variant] = paths.curves(seed)
            written.extend(slot_figures(SlotRuns(slot, load_data(slot), checkpoints, curves), tmp, seed,
                                        cfg.train.device))

    write_folder_atomically(FIGURES_DIR, render)
    pngs = [FIGURES_DIR / path.name for path, _ in written]
    if not os.environ.get("AGMAN_NO_MLFLOW"):
        from agman.tracking import MlflowRun

        run = MlflowRun("figures", {"seed": seed, "profile": cfg.profile, "slots": ",".join(slots)},
                        tags={"profile": cfg.profile})
        for png in pngs:
            run.log_artifact(png)
        run.log_metrics({f"seconds_{path.stem}": seconds for path, seconds in written})
        run.end()
    log.info("wrote %d figures to %s", len(pngs), FIGURES_DIR)
    return pngs
