"""Attribute-specific retrieval with a trained model: ``agman search``.

    agman search --run runs/fashionai/agman/seed0 --image query.jpg --attribute neckline_design \
        [--top 10] [--gallery data/fashionai/cache:test | <folder of images>] [--out grid.png]

The query is decoded as the cache stage decodes every image (``decode_resized``: shorter side to
the checkpoint's ``data.image_size``, center crop), embedded under the attribute, and compared by
cosine similarity (the embeddings are L2-normalised, so a dot product) with every gallery image.

A gallery is either a prepared split (``<cache folder>:<split>``; only the images annotated with
the attribute, as the retrieval evaluation ranks them, and their value names) or a folder of
images (searched recursively; files that do not decode are skipped with a warning). Gallery
embeddings are computed once per (checkpoint content, gallery content, attribute) and kept in
``<checkpoint folder>/search_cache/<key>.npz``; ``.dvcignore`` keeps that folder out of the run's
DVC hash, so searching does not make ``dvc repro`` retrain the cell.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from agman.data.cache import decode_resized
from agman.data.prepared import SPLITS, read_prepared
from agman.inference import TrainedModel, load_trained
from agman.io import write_file_atomically
from agman.reports.figures import search_grid

log = logging.getLogger(__name__)

#: File endings a folder gallery reads (lower case).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
#: Bump when the cached file's layout changes, so old files are recomputed rather than misread.
CACHE_VERSION = 1


# ------------------------------------------------------------------------------------ galleries


@dataclass(frozen=True)
class GalleryItem:
    name: str  # what the results print: a file path relative to the gallery, or the prepared row's path
    value: str | None = None  # the image's value name under the searched attribute, when known
    source: str | int = ""  # the file to decode (folder) or the cache entry (prepared split)


class FolderGallery:
    """Every image file under a folder, decoded at the model's image size."""

    def __init__(self, folder: str | Path, size: int):
        self.folder, self.size = Path(folder), size
        self.description = str(self.folder)
        self.files = sorted(p for p in self.folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not self.files:
            raise FileNotFoundError(f"{self.folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in the gallery folder")

    def items(self, attribute: str) -> list[GalleryItem]:
        return [GalleryItem(str(p.relative_to(self.folder)), None, str(p)) for p in self.files]

    def fingerprint(self, attribute: str) -> str:
        # Names, sizes and modification times: a changed or added image recomputes the embeddings
        # without hashing every byte of a large gallery.
        stats = [(str(p.relative_to(self.folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in self.files]
        return hashlib.sha256(json.dumps(["folder", str(self.folder.resolve()), self.size, stats]).encode()).hexdigest()

    def pixels(self, item: GalleryItem) -> np.ndarray:
        return decode_resized(item.source, self.size)  # (S, S, 3)


class PreparedGallery:
    """One split of a prepared folder with its image cache (``data/<slot>/cache``)."""

    def __init__(self, folder: str | Path, split: str, size: int):
        if split not in SPLITS:
            raise ValueError(f"gallery {folder}:{split}: unknown split {split!r} (splits: {', '.join(SPLITS)})")
        self.folder, self.split = Path(folder), split
        self.description = f"{self.folder}:{split}"
        self.data = read_prepared(self.folder)
        if self.data.cache is None:
            raise FileNotFoundError(f"{self.folder / 'images'}: the prepared gallery has no image cache; "
                                    "run the cache stage for it")
        if self.data.cache.size != size:
            raise ValueError(f"gallery {self.description}: its images are cached at {self.data.cache.size} px but the "
                             f"checkpoint was trained at {size} px; search a cache of the run's own slot")
        self.rows = self.data.table[self.data.table["split"] == split]
        if self.rows.empty:
            raise ValueError(f"gallery {self.description}: the split has no rows")

    def items(self, attribute: str) -> list[GalleryItem]:
        if self.data.task == "triplets":  # Zappos50k: every image can be compared under every condition
            rows = self.rows
            return [GalleryItem(r.path, None, int(r.entry)) for r in rows.itertuples()]
        rows = self.rows[self.rows["attribute"] == attribute]
        values = {a["name"]: a["values"] for a in self.data.meta["attributes"]}.get(attribute, [])
        return [GalleryItem(r.path, values[r.value] if r.value < len(values) else str(r.value), int(r.entry))
                for r in rows.itertuples()]

    def fingerprint(self, attribute: str) -> str:
        parts = [(self.folder / "items.csv").read_bytes(), (self.folder / "images" / "cache.json").read_bytes()]
        digest = hashlib.sha256(json.dumps(["prepared", str(self.folder.resolve()), self.split]).encode())
        for part in parts:
            digest.update(part)
        return digest.hexdigest()

    def pixels(self, item: GalleryItem) -> np.ndarray:
        return self.data.cache[int(item.source)].permute(1, 2, 0).numpy()  # (S, S, 3)


def open_gallery(spec: str | Path, size: int) -> FolderGallery | PreparedGallery:
    """``<prepared folder>[:<split>]`` (split ``test`` when left out) or a folder of images."""
    spec = str(spec)
    folder, _, split = spec.rpartition(":")
    if folder and (Path(folder) / "items.csv").is_file():
        return PreparedGallery(folder, split, size)
    if (Path(spec) / "items.csv").is_file():
        return PreparedGallery(spec, "test", size)
    if not Path(spec).is_dir():
        raise FileNotFoundError(f"{spec}: gallery not found (a folder of images, or a prepared folder such as "
                                "data/fashionai/cache:test)")
    return FolderGallery(spec, size)


def default_gallery(checkpoint: Path) -> str:
    """The test split of the run's own slot: ``runs/<slot>/...`` searches ``data/<slot>/cache:test``."""
    for folder in checkpoint.resolve().parents:
        if folder.parent.name == "runs":
            cache = folder.parent.parent / "data" / folder.name / "cache"
            if (cache / "items.csv").is_file():
                return f"{os.path.relpath(cache)}:test"
    raise FileNotFoundError(f"{checkpoint}: cannot tell which slot's data the run belongs to; pass --gallery "
                            "(a folder of images, or e.g. data/fashionai/cache:test)")


# --------------------------------------------------------------------------------------- search


@dataclass(frozen=True)
class Match:
    rank: int  # 1-based
    item: GalleryItem
    similarity: float  # cosine similarity to the query under the attribute
    pixels: np.ndarray  # (S, S, 3) uint8, the image as the model saw it


@dataclass
class SearchResult:
    query: np.ndarray  # (S, S, 3) uint8, as the model saw it
    query_path: Path
    attribute: str
    gallery: str  # description of the gallery
    matches: list[Match]
    cache_file: Path  # where the gallery embeddings are kept
    cache_hit: bool  # True when they were read back, not computed
    skipped: list[tuple[str, str]] = field(default_factory=list)  # gallery images that did not decode


def cache_file(trained: TrainedModel, gallery, attribute: str) -> Path:
    key = hashlib.sha256(json.dumps([CACHE_VERSION, trained.digest, gallery.fingerprint(attribute),
                                     attribute]).encode()).hexdigest()[:24]
    return trained.checkpoint.parent / "search_cache" / f"{key}.npz"


def gallery_embeddings(trained: TrainedModel, gallery, attribute: str):
    """(items kept, (N, c') embeddings, cache file, whether it was a cache hit, skipped images)."""
    items = gallery.items(attribute)
    if not items:
        raise ValueError(f"gallery {gallery.description}: no image is annotated with attribute {attribute!r}")
    path = cache_file(trained, gallery, attribute)
    by_name = {item.name: item for item in items}
    if path.is_file():
        with np.load(path) as stored:
            names, embeddings = stored["names"].tolist(), stored["embeddings"]
        if all(name in by_name for name in names):
            return [by_name[n] for n in names], embeddings, path, True, []
        log.warning("%s does not match the gallery %s; recomputing it", path, gallery.description)
    kept, pixels, skipped = [], [], []
    for item in items:
        try:
            pixels.append(gallery.pixels(item))
        except OSError as err:
            skipped.append((item.name, str(err)))
            continue
        kept.append(item)
    if skipped:
        log.warning("%d gallery images do not decode and are skipped; first: %s", len(skipped), skipped[0][1])
    if not kept:
        raise OSError(f"gallery {gallery.description}: none of its {len(items)} images decodes")
    embeddings = trained.embed(pixels, trained.attribute_index(attribute))  # (N, c')
    buffer = io.BytesIO()
    np.savez(buffer, names=np.array([item.name for item in kept]), embeddings=embeddings)
    write_file_atomically(path, buffer.getvalue())
    return kept, embeddings, path, False, skipped


def search(trained: TrainedModel, image: str | Path, attribute: str, gallery, top: int = 10) -> SearchResult:
    """The ``top`` gallery images most similar to ``image`` under ``attribute``, best first."""
    if top < 1:
        raise ValueError(f"--top must be at least 1, got {top}")
    index = trained.attribute_index(attribute)  # checked before any decoding or embedding
    query = decode_resized(image, trained.image_size)  # (S, S, 3); OSError naming the file
    items, embeddings, path, hit, skipped = gallery_embeddings(trained, gallery, attribute)
    q = trained.embed([query], index)[0]  # (c',)
    similarity = embeddings @ q  # (N,) cosine: both sides are L2-normalised
    order = np.argsort(-similarity, kind="stable")[:top]  # ties keep gallery order
    matches = [Match(rank + 1, items[i], float(similarity[i]), gallery.pixels(items[i]))
               for rank, i in enumerate(order)]
    return SearchResult(query, Path(image), attribute, gallery.description, matches, path, hit, skipped)


# ------------------------------------------------------------------------------------------ CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, help="a run folder (its best.pt is used) or a checkpoint file")
    parser.add_argument("--image", required=True, help="the query image")
    parser.add_argument("--attribute", required=True, help="the attribute type to compare under, e.g. neckline_design")
    parser.add_argument("--top", type=int, default=10, help="how many matches to return (default 10)")
    parser.add_argument("--gallery", help="a folder of images, or a prepared split such as data/fashionai/cache:test "
                                          "(default: the test split of the run's own slot)")
    parser.add_argument("--out", help="where to write the grid image (default: search_<image>_<attribute>.png)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                        help="auto = CUDA when present (default)")


def run_cli(args: argparse.Namespace) -> SearchResult:
    trained = load_trained(args.run, args.device)
    trained.attribute_index(args.attribute)  # an unknown attribute fails before the gallery is read
    gallery = open_gallery(args.gallery or default_gallery(trained.checkpoint), trained.image_size)
    result = search(trained, args.image, args.attribute, gallery, args.top)
    out = Path(args.out or f"search_{Path(args.image).stem}_{args.attribute}.png")
    search_grid(result, trained, out)
    print(f"query {result.query_path} | attribute {args.attribute} | model {trained.name} ({trained.checkpoint})")
    print(f"gallery {result.gallery}: embeddings {'read from' if result.cache_hit else 'computed and saved to'} "
          f"{result.cache_file}")
    width = max(len(m.item.name) for m in result.matches)
    for m in result.matches:
        value = f"  {m.item.value}" if m.item.value is not None else ""
        print(f"{m.rank:>3}  {m.similarity:+.4f}  {m.item.name:<{width}}{value}")
    print(f"grid image: {out}")
    return result

