"""The resized image cache: every image is decoded once, so epochs and evaluations never decode
a full-size JPEG again.

Each image is decoded, resized so its shorter side is ``data.image_size`` and center-cropped to a
square (the deterministic part of the transform in docs/model.md; the random flip stays
in the training transform). Two storage formats, chosen by ``data.cache.format``:

- ``array``: one ``images.npy`` of shape (N, S, S, 3) uint8, memory-mapped by the readers. No
  decoding at all, but S*S*3 bytes per image: 150 KB at 224 px, 27 GB for FashionAI's 180k images.
- ``jpeg``: the crops re-encoded as small JPEGs, concatenated in ``images.bin`` with their byte
  ranges in ``offsets.npy`` (N+1,). About 10-15 KB per image at 224 px; decoding a 224 px JPEG
  is several times cheaper than decoding a full-size photo and resizing it.

Policy for bad images, per case: a *missing* file stops the ``prepare`` stage
(the download is incomplete, and that needs the user); a file that exists but does not decode
(*corrupt or truncated* JPEG) is skipped here with one counted warning, listed in
``skipped.csv`` with the decoder's message, and every table row (and Zappos triplet) that uses it
is dropped. Nothing reaches a DataLoader worker undecodable.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image, UnidentifiedImageError

from agman.io import write_folder_atomically

log = logging.getLogger(__name__)

FORMATS = ("array", "jpeg")


def decode_resized(path: str | Path, size: int) -> np.ndarray:
    """(size, size, 3) uint8: decode, resize the shorter side to ``size``, center-crop.

    ``draft`` lets libjpeg decode at 1/2, 1/4 or 1/8 scale when the image is at least twice the
    target, which cuts decode time several-fold on full-size photos; the antialiased resize after
    it does the rest. Raises OSError naming the file when it does not decode.
    """
    try:
        with Image.open(path) as img:
            img.draft("RGB", (size, size))
            img = img.convert("RGB")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: image not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise OSError(f"{path}: cannot decode image ({err})") from None
    w, h = img.size
    scale = size / min(w, h)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    img = img.resize((new_w, new_h), Image.BILINEAR)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return np.asarray(img.crop((left, top, left + size, top + size)))  # (S, S, 3)


def _encode(job: tuple[str, int, str, int]) -> bytes | np.ndarray | str:
    """Worker: the cache entry of one image, or the error message when it does not decode."""
    path, size, fmt, quality = job
    try:
        pixels = decode_resized(path, size)
    except FileNotFoundError:
        raise  # a missing file is an incomplete download: stop (see the module docstring)
    except OSError as err:
        return str(err)
    if fmt == "array":
        return pixels
    buffer = BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _entries(jobs: list, workers: int):
    if workers <= 0:
        yield from map(_encode, jobs)
        return
    with ProcessPoolExecutor(workers) as pool:
        yield from pool.map(_encode, jobs, chunksize=64)


@dataclass(frozen=True)
class CacheReport:
    images: int  # images stored
    skipped: list[tuple[str, str]]  # (path, reason) of images that did not decode
    bytes: int  # size of the image data on disk
    seconds: float  # wall time of decoding and writing the images (the rate benchmarks compare)


def write_cache(paths: list[str], root: str | Path, out_dir: str | Path, size: int, *, fmt: str = "jpeg",
                jpeg_quality: int = 90, workers: int = 0, progress=None) -> CacheReport:
    """Decode ``root/<path>`` for each path into ``out_dir`` (replaced atomically).

    Entry ``i`` of the cache is ``paths[i]`` when it decodes; ``index.csv`` maps each stored
    path to its entry, ``skipped.csv`` lists the others. ``progress`` wraps the entry iterator
    (e.g. tqdm).
    """
    if fmt not in FORMATS:
        raise ValueError(f"data.cache.format: {fmt!r} is not one of {list(FORMATS)}")
    if not paths:
        raise ValueError("no images to cache")
    out_dir = Path(out_dir)
    reports: list[CacheReport] = []
    write_folder_atomically(out_dir, lambda tmp: reports.append(
        _fill_cache(tmp, paths, root, size, fmt=fmt, jpeg_quality=jpeg_quality, workers=workers,
                    progress=progress)))
    report = reports[0]
    if report.skipped:
        log.warning("%d of %d images do not decode and are skipped (listed in %s); first: %s",
                    len(report.skipped), len(paths), out_dir / "skipped.csv", report.skipped[0][1])
    return report


def _fill_cache(tmp: Path, paths: list[str], root: str | Path, size: int, *, fmt: str, jpeg_quality: int,
                workers: int, progress) -> CacheReport:
    """Write the cache of ``paths`` into the new folder ``tmp`` (see :func:`write_cache`)."""
    start = time.perf_counter()
    tmp.mkdir()
    # os.path.join, not Path: building 180k Path objects cost about a second at FashionAI's size.
    jobs = [(os.path.join(root, p), size, fmt, jpeg_quality) for p in paths]
    entries = _entries(jobs, workers)
    if progress is not None:
        entries = progress(entries, total=len(jobs))
    kept, skipped, offsets = [], [], [0]
    # Over what is stored, path by path: a run's fingerprint includes it, so a re-rendered or
    # re-decoded image with an unchanged path and label still makes a trained run stale.
    digest = hashlib.sha256()
    array = np.lib.format.open_memmap(tmp / "images.npy", mode="w+", dtype=np.uint8,
                                      shape=(len(paths), size, size, 3)) if fmt == "array" else None
    with open(tmp / "images.bin", "wb") if fmt == "jpeg" else open(os.devnull, "wb") as blob:
        for path, entry in zip(paths, entries, strict=True):
            if isinstance(entry, str):
                skipped.append((path, entry))
                continue
            if array is not None:
                array[len(kept)] = entry
            else:
                blob.write(entry)
                offsets.append(offsets[-1] + len(entry))
            digest.update(path.encode() + b"\0")
            digest.update(entry if isinstance(entry, bytes) else entry.tobytes())
            kept.append(path)
    if not kept:
        raise OSError(f"none of the {len(paths)} images under {root} decodes; first: {skipped[0][1]}")
    if array is not None:
        # The array keeps len(paths) rows; the last len(skipped) stay zero and are never indexed
        # (rewriting a 27 GB file to drop a handful of rows is not worth it).
        array.flush()
        del array
        data_bytes = (tmp / "images.npy").stat().st_size
    else:
        np.save(tmp / "offsets.npy", np.asarray(offsets, dtype=np.int64))
        data_bytes = offsets[-1]
    pd.DataFrame({"path": kept, "entry": np.arange(len(kept))}).to_csv(tmp / "index.csv", index=False)
    pd.DataFrame(skipped, columns=["path", "reason"]).to_csv(tmp / "skipped.csv", index=False)
    (tmp / "cache.json").write_text(json.dumps({"format": fmt, "size": size, "images": len(kept),
                                                "jpeg_quality": jpeg_quality, "sha256": digest.hexdigest()},
                                               indent=2) + "\n")
    return CacheReport(len(kept), skipped, data_bytes, time.perf_counter() - start)


class ImageCache:
    """Read side: ``cache[i]`` is entry ``i`` as a (3, S, S) uint8 tensor, ``cache.batch(entries)``
    several at once.

    Files are opened lazily in each process: a DataLoader worker gets the object by pickling,
    and a pickled memmap would copy the whole array.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        meta = self.folder / "cache.json"
        if not meta.is_file():
            raise FileNotFoundError(f"{meta}: image cache missing; run `dvc repro cache`")
        info = json.loads(meta.read_text())
        if "sha256" not in info:
            raise ValueError(f"{meta}: written by an older version (no 'sha256'); run `dvc repro cache` again")
        self.format, self.size, self.count = info["format"], info["size"], info["images"]
        self.sha256 = info["sha256"]  # of the stored images, path by path (see write_cache)
        self._data = None
        self._offsets = None

    def __len__(self) -> int:
        return self.count

    def __getstate__(self):
        return {**self.__dict__, "_data": None, "_offsets": None}

    def _open(self) -> None:
        if self.format == "array":
            self._data = np.load(self.folder / "images.npy", mmap_mode="r")
        else:
            self._data = np.memmap(self.folder / "images.bin", dtype=np.uint8, mode="r")
            self._offsets = np.load(self.folder / "offsets.npy")

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.batch(np.array([i]))[0]  # (3, S, S)

    def batch(self, entries: np.ndarray) -> torch.Tensor:
        """Entries ``entries`` as one (N, 3, S, S) uint8 tensor in channels-last memory: the
        (N, S, S, 3) pixels viewed as NCHW, the layout the network runs in on a GPU."""
        if self._data is None:
            self._open()
        if self.format == "array":
            pixels = self._data[np.asarray(entries)]  # (N, S, S, 3), one gather out of the read-only map
        else:
            pixels = np.stack([self._decode(int(i)) for i in entries])  # (N, S, S, 3)
        return torch.from_numpy(pixels).permute(0, 3, 1, 2)  # (N, 3, S, S)

    def _decode(self, i: int) -> np.ndarray:
        start, end = self._offsets[i], self._offsets[i + 1]
        # Pillow's libjpeg-turbo; torchvision.io's decoders are deprecated since 0.29.
        with Image.open(BytesIO(self._data[start:end].tobytes())) as img:
            return np.asarray(img.convert("RGB"))  # (S, S, 3)
