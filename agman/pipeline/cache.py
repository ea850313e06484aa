"""Stage ``cache@<slot>``: decode every image of the prepared data once into the resized image
cache (``data/<slot>/cache/``, agman.data.cache)."""

from __future__ import annotations

from tqdm import tqdm

from agman.config import Config
from agman.data.prepared import PreparedData, cache_prepared, read_prepared
from agman.pipeline.layout import SlotPaths
from agman.pipeline.matrix import slot_config


def run(cfg: Config, slot: str) -> None:
    d = slot_config(cfg, slot).data
    paths = SlotPaths(slot)
    cache_prepared(read_prepared(paths.prepared), d.root, paths.cache, d.image_size, fmt=d.cache.format,
                   jpeg_quality=d.cache.jpeg_quality, workers=d.num_workers,
                   progress=lambda it, total: tqdm(it, total=total, desc="cache", unit="img"))


def load_cached(slot: str) -> PreparedData:
    """The slot's prepared data with its image cache, as the training, evaluation and figures read it."""
    folder = SlotPaths(slot).cache
    data = read_prepared(folder)
    if data.cache is None:
        raise FileNotFoundError(f"{folder / 'images'}: image cache missing; run `dvc repro cache@{slot}`")
    return data
