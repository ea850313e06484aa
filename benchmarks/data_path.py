"""Images per second per CPU core into 224 px training tensors: full-size JPEG decode vs the cache.

(a) ``decode``: what the public code does per item: open a full-size JPEG with PIL, convert to
    RGB, torchvision Resize(224) + CenterCrop(224) + RandomHorizontalFlip + ToTensor + Normalize.
(b) ``cache_jpeg`` / ``cache_array``: what a DataLoader worker does per image today: read the
    resized cache (agman.data.cache.write_cache, both formats) through ImageCache and draw the
    flip (agman.data.images.draw_flip); the pixels leave as uint8 and agman.data.images.normalise
    mirrors and normalises whole batches on the training device.
``cache_jpeg_float`` / ``cache_array_float`` are (b) with the float conversion and normalisation
done per image on the CPU, as the datasets did before it moved to the device;
``cache_jpeg_v2_transform`` is that with torchvision's v2 transform. ``normalise_cpu`` is the
batch normalisation itself on the CPU (batches of 48 images), what the main process pays when
there is no GPU. Single process, one torch thread: images/s per core.

The photos are synthesised (smooth gradients, soft blobs, texture and sensor noise, 512x680,
quality 90) in a temporary folder, so their size and entropy resemble FashionAI's. The loader
check runs a DataLoader (batch 16, in the main process and with 2 workers) over a TripletDataset
(3 images per item) on the cache, collation into (16, 3, 224, 224) uint8 batches included.

    python benchmarks/data_path.py                    # 200 photos, 3 passes
    python benchmarks/data_path.py --images 8 --repeats 1 --loader-items 8   # toy
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import common  # noqa: F401  (puts the repo root first on sys.path)
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import transforms as T
from torchvision.transforms import v2

from agman.data.cache import ImageCache, write_cache
from agman.data.images import IMAGENET_MEAN, IMAGENET_STD, TripletDataset, draw_flip, normalise

SIZE = 224
# Published training throughput of ResNet-50 at 224 px (docs/performance.md), not measured here.
ANCHORS = {"resnet50_a100_amp_channels_last": 2470, "resnet50_h100_sxm_amp": 2800}


def synth_photo(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A photo-like RGB image: background gradient, a few soft coloured blobs, a fine texture and
    sensor noise (pure noise would make JPEGs far larger and slower to decode than photos)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.empty((height, width, 3), np.float32)
    a, b = rng.uniform(-0.3, 0.3, 2)
    for ch in range(3):
        img[..., ch] = rng.uniform(60, 200) + 60 * (a * x / width + b * y / height)
    for _ in range(rng.integers(3, 7)):  # garment-like soft blobs
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        sx, sy = rng.uniform(40, 200, 2)
        mask = np.exp(-(((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2))
        img += mask[..., None] * rng.uniform(-90, 90, 3)
    freq = rng.uniform(0.05, 0.4)
    img += (8 * np.sin(freq * x + rng.uniform(0, 6)) * np.sin(freq * 0.7 * y))[..., None]  # fabric texture
    img += rng.normal(0, 4, img.shape)  # sensor noise
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def write_photos(folder: Path, n: int, width: int, height: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    names = []
    for i in range(n):
        name = f"img_{i:05d}.jpg"
        synth_photo(rng, width, height).save(folder / name, format="JPEG", quality=90)
        names.append(name)
    return names


def decode_transform(train: bool = True) -> T.Compose:
    """The public code's per-item transform on a PIL image."""
    steps = [T.Resize(SIZE), T.CenterCrop(SIZE)]
    steps += [T.RandomHorizontalFlip()] if train else []
    return T.Compose(steps + [T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def decode_item(path: Path, transform) -> torch.Tensor:
    with Image.open(path) as img:
        return transform(img.convert("RGB"))


def per_core_rate(load_one, n: int, repeats: int) -> tuple[float, list[float]]:
    """Images/s of ``load_one(i)`` for i in range(n), median over ``repeats`` passes (one warm-up)."""
    for i in range(min(n, 4)):
        load_one(i)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(n):
            load_one(i)
        rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates), rates


def loader_rate(cache: ImageCache, n_items: int, workers: int, batch: int, epochs: int, seed: int) -> dict:
    """Images/s through a DataLoader over TripletDataset (3 images per item); epoch 1 is a warm-up
    (worker start), the median is over the later epochs."""
    rng = np.random.default_rng(seed)
    triplets = np.column_stack([rng.integers(0, len(cache), (n_items, 3)), rng.integers(0, 8, n_items)])
    loader = DataLoader(TripletDataset(cache, np.arange(len(cache)), triplets), batch_size=batch,
                        num_workers=workers, persistent_workers=workers > 0, shuffle=False)
    rates = []
    for epoch in range(epochs + 1):
        start = time.perf_counter()
        shapes = None
        for a, p, n, attr, _ in loader:
            shapes = shapes or [list(a.shape), list(p.shape), list(n.shape), list(attr.shape)]
        if epoch:
            rates.append(3 * n_items / (time.perf_counter() - start))
    rate = statistics.median(rates)
    return {"workers": workers, "items": n_items, "images_per_item": 3, "batch": batch,
            "images_per_s": rate, "images_per_s_per_worker": rate / max(workers, 1),
            "images_per_s_all_epochs": rates, "batch_shapes": shapes}


def compare_pixels(photo_dir: Path, names: list[str], cache: ImageCache) -> dict:
    """The cache path's tensors against the decode path's, both without the random flip, in
    0-255 levels (normalised difference x std x 255)."""
    decode = decode_transform(train=False)

    def ours(image):
        return normalise(image[None])[0]

    std = torch.tensor(IMAGENET_STD).view(3, 1, 1) * 255
    diffs = []
    for i, name in enumerate(names):
        a = decode_item(photo_dir / name, decode)
        b = ours(cache[i])
        if a.shape != b.shape:
            raise AssertionError(f"shapes differ: decode {tuple(a.shape)} vs cache {tuple(b.shape)}")
        diffs.append(((a - b) * std).abs())
    d = torch.stack(diffs)
    return {"shape": list(a.shape), "mean_abs_diff_levels": float(d.mean()),
            "p99_abs_diff_levels": float(torch.quantile(d.flatten()[:1_000_000], 0.99)),
            "max_abs_diff_levels": float(d.max())}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200, help="distinct synthetic photos")
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--height", type=int, default=680)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over the photos")
    parser.add_argument("--loader-items", type=int, default=300, help="triplets for the DataLoader check")
    parser.add_argument("--loader-workers", type=int, nargs="+", default=[0, 2],
                        help="DataLoader worker counts to measure (0 = in the main process)")
    parser.add_argument("--loader-epochs", type=int, default=3)
    parser.add_argument("--loader-format", default="jpeg", choices=["jpeg", "array"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    result = {"benchmark": "data_path", "args": vars(args), "machine": common.machine()}
    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        photos = tmp / "photos"
        photos.mkdir()
        names = write_photos(photos, args.images, args.width, args.height, args.seed)
        caches = {}
        for fmt in ("jpeg", "array"):
            report = write_cache(names, photos, tmp / f"cache_{fmt}", SIZE, fmt=fmt, jpeg_quality=90)
            caches[fmt] = ImageCache(tmp / f"cache_{fmt}")
            result[f"cache_{fmt}_bytes_per_image"] = report.bytes / report.images
        result["photo_bytes_per_image"] = sum((photos / n).stat().st_size for n in names) / len(names)

        torch.set_num_threads(1)  # one core: PIL is single-threaded, and so is every path here
        try:
            train_decode = decode_transform(train=True)
            v2_train = v2.Compose([v2.RandomHorizontalFlip(), v2.ToDtype(torch.float32, scale=True),
                                   v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])  # the transform before cd65805

            def uint8_item(cache, i):  # what TripletDataset does per image
                draw_flip(True)
                return cache[i]

            def float_item(cache, i):  # the per-image CPU normalisation the datasets did before
                return normalise(cache[i][None], torch.tensor([draw_flip(True)]))[0]

            batch = torch.stack([caches["array"][i % len(caches["array"])] for i in range(48)])
            paths = {
                "decode": lambda i: decode_item(photos / names[i], train_decode),
                "cache_jpeg": lambda i: uint8_item(caches["jpeg"], i),
                "cache_array": lambda i: uint8_item(caches["array"], i),
                "cache_jpeg_float": lambda i: float_item(caches["jpeg"], i),
                "cache_array_float": lambda i: float_item(caches["array"], i),
                "cache_jpeg_v2_transform": lambda i: v2_train(caches["jpeg"][i]),
            }
            rates, shapes = {}, {}
            for name, load in paths.items():
                shapes[name] = list(load(0).shape)
                rates[name], result.setdefault("images_per_s_all_repeats", {})[name] = \
                    per_core_rate(load, args.images, args.repeats)
            flips = torch.arange(len(batch)) % 2 == 0
            seconds, _ = common.median_seconds(lambda: normalise(batch, flips), max(3, args.repeats))
            rates["normalise_cpu"] = len(batch) / seconds
        finally:
            torch.set_num_threads(threads)
        result["images_per_s_per_core"] = rates
        result["tensor_shapes"] = shapes
        result["speedup_vs_decode"] = {k: v / rates["decode"] for k, v in rates.items()}
        result["pixels_vs_decode"] = {fmt: compare_pixels(photos, names, caches[fmt]) for fmt in ("jpeg", "array")}
        # Cores one GPU would need to be fed at the published ResNet-50 rates, per path.
        result["cores_to_feed_anchor"] = {
            anchor: {k: round(img_s / v, 1) for k, v in rates.items()} for anchor, img_s in ANCHORS.items()}
        torch.set_num_threads(1)  # workers use one thread each; so does the main process here
        try:
            result["loader"] = {f"workers_{w}": loader_rate(caches[args.loader_format], args.loader_items, w, 16,
                                                            args.loader_epochs, args.seed)
                                for w in args.loader_workers}
        finally:
            torch.set_num_threads(threads)
    result["machine_after"] = {"load_average_1_5_15min": common.machine().get("load_average_1_5_15min")}
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
