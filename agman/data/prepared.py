"""The prepared dataset that the ``prepare`` and ``cache`` stages hand to training and evaluation.

Two tasks share one layout (a folder with ``items.csv``, ``attributes.json`` and, for the
triplet task, ``triplets_{train,valid,test}.npy``):

- ``retrieval`` (FashionAI, DeepFashion; Sec. IV-A1): one table row per annotated (image,
  attribute type) with its ``value``, ``split`` (train/valid/test) and ``role``
  (train/query/candidate). Training triplets are sampled from the train rows.
- ``triplets`` (Zappos50k; Sec. IV-A2): one table row per image with its ``split``; the CSN
  triplet lists give (anchor, close, far, condition) as table rows, for training (``train``)
  and for the triplet relation prediction task (``valid``, ``test``).

The ``cache`` stage adds the ``entry`` column (the image's index in the image cache) and drops
the rows, and triplets, of images that did not decode.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from agman.data.cache import ImageCache, write_cache
from agman.io import write_folder_atomically

log = logging.getLogger(__name__)

TASKS = ("retrieval", "triplets")
SPLITS = ("train", "valid", "test")


@dataclass
class PreparedData:
    table: pd.DataFrame  # see the module docstring; row numbers are what triplets refer to
    attributes: list[str]  # attribute types (conditions) in the model's index order
    task: str  # "retrieval" or "triplets"
    cache: ImageCache | None = None  # the image cache, once the cache stage ran
    triplets: dict[str, np.ndarray] = field(default_factory=dict)  # task "triplets": (T, 4) per split
    meta: dict = field(default_factory=dict)  # attributes.json as written (values, counts, ...)

    @property
    def entries(self) -> np.ndarray:
        """(rows,) cache entry of each table row."""
        return self.table["entry"].to_numpy()


def write_prepared(folder: str | Path, data: PreparedData, images: str | Path | None = None) -> None:
    """Write ``data`` to ``folder`` atomically (a temp folder renamed into place); ``images``, an
    image cache folder written beforehand, is moved in as ``folder/images``."""
    if data.task not in TASKS:
        raise ValueError(f"unknown task {data.task!r}")

    def render(tmp: Path) -> None:
        tmp.mkdir()
        if images is not None:
            os.replace(images, tmp / "images")
        data.table.to_csv(tmp / "items.csv", index=False)
        meta = {**data.meta, "task": data.task, "attributes": data.meta.get("attributes") or
                [{"name": name, "values": []} for name in data.attributes]}
        (tmp / "attributes.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        for split, triplets in data.triplets.items():
            np.save(tmp / f"triplets_{split}.npy", triplets.astype(np.int64))

    write_folder_atomically(folder, render)


def read_prepared(folder: str | Path) -> PreparedData:
    """Read a folder written by ``write_prepared`` (and the image cache inside it, if any)."""
    folder = Path(folder)
    items, meta_file = folder / "items.csv", folder / "attributes.json"
    for path in (items, meta_file):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing; run `dvc repro` up to the stage that writes {folder}")
    meta = json.loads(meta_file.read_text())
    triplets = {s: np.load(folder / f"triplets_{s}.npy") for s in SPLITS if (folder / f"triplets_{s}.npy").is_file()}
    cache = ImageCache(folder / "images") if (folder / "images").is_dir() else None
    return PreparedData(table=pd.read_csv(items, keep_default_na=False), task=meta["task"],
                        attributes=[a["name"] for a in meta["attributes"]], cache=cache,
                        triplets=triplets, meta=meta)


def drop_skipped(data: PreparedData, index: pd.DataFrame) -> tuple[PreparedData, dict]:
    """Keep the rows whose image is in the cache ``index`` (path -> entry), renumber them, and
    drop the triplets that use a removed row. Returns the new data and the counts removed."""
    entry = data.table["path"].map(dict(zip(index["path"], index["entry"], strict=True)))
    keep = entry.notna().to_numpy()  # (rows,)
    new_row = np.full(len(keep), -1, dtype=np.int64)
    new_row[keep] = np.arange(keep.sum())
    table = data.table[keep].reset_index(drop=True)
    table["entry"] = entry[keep].astype(np.int64).to_numpy()
    triplets, dropped = {}, {"rows": int((~keep).sum())}
    for split, t in data.triplets.items():
        mapped = new_row[t[:, :3]]  # (T, 3) -1 where an image was dropped
        ok = (mapped >= 0).all(axis=1)
        triplets[split] = np.concatenate([mapped[ok], t[ok, 3:]], axis=1)
        dropped[f"triplets_{split}"] = int((~ok).sum())
    if any(dropped.values()):
        log.warning("images that do not decode removed %s", ", ".join(f"{v} {k}" for k, v in dropped.items() if v))
    return PreparedData(table, data.attributes, data.task, data.cache, triplets, data.meta), dropped


def cache_prepared(data: PreparedData, root: str | Path, folder: str | Path, size: int, *, fmt: str = "jpeg",
                   jpeg_quality: int = 90, workers: int = 0, progress=None) -> PreparedData:
    """The ``cache`` stage: decode each image of ``data`` once into ``folder/images``, drop what
    does not decode, and write the result to ``folder`` (atomically); returns it as read back."""
    folder = Path(folder)
    images = folder.with_name(folder.name + ".images")
    paths = list(pd.unique(data.table["path"]))
    report = write_cache(paths, root, images, size, fmt=fmt, jpeg_quality=jpeg_quality, workers=workers,
                         progress=progress)
    kept, dropped = drop_skipped(data, pd.read_csv(images / "index.csv", keep_default_na=False))
    kept.meta = {**data.meta, "cache": {"images": report.images, "skipped": len(report.skipped),
                                        "bytes": report.bytes, **dropped}}
    write_prepared(folder, kept, images=images)
    log.info("cached %d images at %d px as %s: %.1f MB (%.1f KB per image); %d skipped; %.1f s, %.0f images/s",
             report.images, size, fmt, report.bytes / 1e6, report.bytes / 1e3 / report.images, len(report.skipped),
             report.seconds, len(paths) / report.seconds)
    return read_prepared(folder)
