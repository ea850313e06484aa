"""Images per second into 224 px training batches: full-size JPEG decode vs the cache, per CPU
core and through the feeds (agman.data.feed), and on a GPU the alternatives to CPU decoding.

Per core (one process, one torch thread):
(a) ``decode``: what the public code does per item: open a full-size JPEG with PIL, convert to
    RGB, torchvision Resize(224) + CenterCrop(224) + RandomHorizontalFlip + ToTensor + Normalize.
(b) ``cache_jpeg`` / ``cache_array``: one image read from the resized cache (ImageCache[i]);
    ``cache_jpeg_batch`` / ``cache_array_batch``: 48 at once (ImageCache.batch, what a feed's
    worker does per batch of 16 triplets), per image. The pixels leave as uint8 and
    agman.data.images.normalise mirrors and normalises whole batches on the training device;
    ``normalise_cpu`` is that normalisation on the CPU (batches of 48), what a CPU run pays.
Feeds (``--feed-workers``): ``data.feed: host`` (DataLoader workers, pinned memory, copied to
``--device``) over each cache format, batches of 48 random entries, images/s in all; with a
CUDA ``--device`` also ``data.feed: device`` (the array cache in GPU memory) and batched JPEG
decoding on the GPU (``torchvision.io.decode_jpeg(device="cuda")``) of the cached JPEGs, whose
pixels are compared with Pillow's.

The photos are synthesised (smooth gradients, soft blobs, texture and sensor noise, 512x680,
quality 90) in a temporary folder, so their size and entropy resemble FashionAI's.

    python benchmarks/data_path.py                    # 200 photos, 3 passes
    python benchmarks/data_path.py --device cuda --images 2000 --feed-workers 1 2 4   # on the GPU machine
    python benchmarks/data_path.py --images 8 --repeats 1 --feed-batches 4   # toy
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import common  # noqa: F401  (puts the repo root first on sys.path)
import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T

from agman.data.cache import ImageCache, write_cache
from agman.data.feed import DeviceFeed, HostFeed
from agman.data.images import IMAGENET_MEAN, IMAGENET_STD, normalise

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


def feed_rate(feed, n_entries: int, batches: int, passes: int, seed: int) -> dict:
    """Images/s through ``feed`` over ``batches`` batches of 48 random entries, on its device
    (synchronised); the first pass (worker start) is a warm-up, the median is over the others."""
    rng = np.random.default_rng(seed)
    entries = [rng.integers(0, n_entries, 48) for _ in range(batches)]
    sync = torch.cuda.synchronize if feed.device.type == "cuda" else (lambda: None)
    rates = []
    for k in range(passes + 1):
        start = time.perf_counter()
        shape = None
        for images in feed(entries):
            shape = shape or list(images.shape)
        sync()
        if k:
            rates.append(48 * batches / (time.perf_counter() - start))
    return {"images_per_s": statistics.median(rates), "images_per_s_all_passes": rates, "batch_shape": shape}


def gpu_decode(cache: ImageCache, batches: int, seed: int) -> dict:
    """Batched nvJPEG decoding of the cached JPEGs on the GPU: images/s and the largest pixel
    difference from Pillow's decoding of the same files (0 would make it a drop-in for the CPU path)."""
    from torchvision.io import decode_jpeg

    rng = np.random.default_rng(seed)
    blob, offsets = np.fromfile(cache.folder / "images.bin", dtype=np.uint8), np.load(cache.folder / "offsets.npy")
    data = [torch.from_numpy(blob[offsets[i]:offsets[i + 1]].copy()) for i in range(len(cache))]  # the JPEG files
    entries = [rng.integers(0, len(cache), 48) for _ in range(batches)]
    decode_jpeg([data[i] for i in entries[0]], device="cuda")  # warm-up: the decoder's start
    torch.cuda.synchronize()
    start = time.perf_counter()
    for batch in entries:
        decode_jpeg([data[i] for i in batch], device="cuda")
    torch.cuda.synchronize()
    rate = 48 * batches / (time.perf_counter() - start)
    gpu = torch.stack(decode_jpeg(data[:48], device="cuda")).cpu()
    pil = cache.batch(np.arange(min(48, len(cache))))
    diff = (gpu[:len(pil)].int() - pil.int()).abs()
    return {"images_per_s": rate, "max_abs_diff_levels_vs_pillow": int(diff.max()),
            "share_of_pixels_differing": float((diff > 0).float().mean())}


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


def per_core_rates(caches: dict, photos: Path, names: list[str], repeats: int) -> tuple[dict, dict, dict]:
    """Images/s per core of each path (module docstring), their tensors' shapes and every pass."""
    train_decode = decode_transform(train=True)
    batch = torch.stack([caches["array"][i % len(caches["array"])] for i in range(48)])
    n = len(names)

    def batched(cache):  # 48 entries per call: rate per image = 48 x calls/s
        return lambda i: cache.batch(np.arange(i, i + 48) % n)

    paths = {
        "decode": (lambda i: decode_item(photos / names[i], train_decode), 1),
        "cache_jpeg": (lambda i: caches["jpeg"][i], 1),
        "cache_array": (lambda i: caches["array"][i], 1),
        "cache_jpeg_batch": (batched(caches["jpeg"]), 48),
        "cache_array_batch": (batched(caches["array"]), 48),
    }
    rates, shapes, passes = {}, {}, {}
    for name, (load, per_call) in paths.items():
        shapes[name] = list(load(0).shape[-3:])
        calls = n if per_call == 1 else max(1, n // per_call)
        rate, all_passes = per_core_rate(load, calls, repeats)
        rates[name], passes[name] = rate * per_call, [r * per_call for r in all_passes]
    flips = torch.arange(len(batch)) % 2 == 0
    seconds, _ = common.median_seconds(lambda: normalise(batch, flips), max(3, repeats))
    rates["normalise_cpu"] = len(batch) / seconds
    return rates, shapes, passes


def feed_rates(caches: dict, args, device: torch.device) -> dict:
    """Images/s of each feed and cache format, and on CUDA of the GPU-side alternatives."""
    out = {}
    for fmt, cache in caches.items():
        for workers in args.feed_workers:
            out[f"host_{fmt}_workers_{workers}"] = feed_rate(HostFeed(cache, device, workers), len(cache),
                                                             args.feed_batches, args.feed_passes, args.seed)
    if device.type == "cuda":
        out["device_array"] = feed_rate(DeviceFeed(caches["array"], device), len(caches["array"]),
                                        args.feed_batches, args.feed_passes, args.seed)
        out["gpu_decode_jpeg"] = gpu_decode(caches["jpeg"], args.feed_batches, args.seed)
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200, help="distinct synthetic photos")
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--height", type=int, default=680)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over the photos")
    parser.add_argument("--feed-workers", type=int, nargs="+", default=[0, 2],
                        help="DataLoader worker counts of the host feed (0 = in the main process)")
    parser.add_argument("--feed-batches", type=int, default=50, help="batches of 48 images per feed pass")
    parser.add_argument("--feed-passes", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="where the feeds deliver (cuda: also the GPU paths)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    device = torch.device(args.device)

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
            rates, shapes, passes = per_core_rates(caches, photos, names, args.repeats)
            result["images_per_s_all_repeats"] = passes
            result["feeds"] = feed_rates(caches, args, device)
        finally:
            torch.set_num_threads(threads)
        result["images_per_s_per_core"] = rates
        result["tensor_shapes"] = shapes
        result["speedup_vs_decode"] = {k: v / rates["decode"] for k, v in rates.items()}
        result["pixels_vs_decode"] = {fmt: compare_pixels(photos, names, caches[fmt]) for fmt in ("jpeg", "array")}
        # Cores one GPU would need to be fed at the published ResNet-50 rates, per path.
        result["cores_to_feed_anchor"] = {
            anchor: {k: round(img_s / v, 1) for k, v in rates.items()} for anchor, img_s in ANCHORS.items()}
    return common.report(result)


if __name__ == "__main__":
    main()
