"""How cached pixels reach the device that trains or evaluates (``data.feed``).

A feed turns a list of batches, each an array of cache entries, into (N, 3, S, S) uint8 tensors
on the device, in channels-last memory, one per batch and in order:

- ``host``: DataLoader workers read each batch from the cache (one gather from the memory-mapped
  array cache, or one JPEG decode per image) into pinned memory, and it crosses to the device
  without blocking. The workers persist for the run; every call hands them new batches.
- ``device``: the whole array cache is copied into device memory once (27 GB for FashionAI at
  224 px, 43 GB for DeepFashion) and a batch is one gather there: no CPU work per batch.

Both deliver the same pixels (tests/data/test_feed.py); which images are mirrored is decided by
the caller (``agman.data.images.draw_flips``), not here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from agman.data.cache import ImageCache

FEEDS = ("host", "device")
#: Array rows copied to the device at a time by the ``device`` feed: the host never holds more.
_COPY_ROWS = 4096


class Feed(Protocol):
    device: torch.device

    def __call__(self, batches: Sequence[np.ndarray]) -> Iterator[torch.Tensor]: ...


class _CacheBatches(Dataset):
    """A DataLoader dataset whose items are whole batches: ``__getitems__(entries)`` is
    ``cache.batch(entries)``, one read per batch rather than one per image."""

    def __init__(self, cache: ImageCache):
        self.cache = cache

    def __len__(self) -> int:
        return len(self.cache)

    def __getitems__(self, entries: list[int]) -> torch.Tensor:
        return self.cache.batch(np.asarray(entries))  # (N, 3, S, S) uint8


class _Batches:
    """A ``batch_sampler`` whose batches are replaced before each pass (persistent workers
    re-read it every time the loader is iterated)."""

    def __init__(self):
        self.batches: Sequence[np.ndarray] = []

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[int]]:
        return (b.tolist() for b in self.batches)


def _whole_batch(batch: torch.Tensor) -> torch.Tensor:
    return batch  # __getitems__ already returns the collated batch


class HostFeed:
    """``data.feed: host``: DataLoader workers read the batches; ``workers`` 0 reads them here."""

    def __init__(self, cache: ImageCache, device: torch.device, workers: int):
        self.device = device
        self._sampler = _Batches()
        self._loader = DataLoader(_CacheBatches(cache), batch_sampler=self._sampler, num_workers=workers,
                                  collate_fn=_whole_batch, pin_memory=device.type == "cuda",
                                  persistent_workers=workers > 0)

    def __call__(self, batches: Sequence[np.ndarray]) -> Iterator[torch.Tensor]:
        self._sampler.batches = batches
        for images in self._loader:
            yield images.to(self.device, non_blocking=True)  # (N, 3, S, S) uint8, channels-last


class DeviceFeed:
    """``data.feed: device``: the array cache resident in device memory."""

    def __init__(self, cache: ImageCache, device: torch.device):
        if cache.format != "array":
            raise ValueError(f"data.feed: device needs data.cache.format: array ({cache.folder} holds "
                             f"{cache.format} images, which would need decoding)")
        pixels = np.load(cache.folder / "images.npy", mmap_mode="r")  # (N, S, S, 3)
        self.device = device
        self.images = torch.empty(pixels.shape, dtype=torch.uint8, device=device)
        for start in range(0, len(pixels), _COPY_ROWS):
            self.images[start:start + _COPY_ROWS].copy_(torch.from_numpy(np.array(pixels[start:start + _COPY_ROWS])))

    def __call__(self, batches: Sequence[np.ndarray]) -> Iterator[torch.Tensor]:
        for entries in batches:
            index = torch.from_numpy(np.asarray(entries, dtype=np.int64)).to(self.device, non_blocking=True)
            yield self.images.index_select(0, index).permute(0, 3, 1, 2)  # (N, 3, S, S) uint8, channels-last


def build_feed(name: str, cache: ImageCache, device: torch.device, workers: int) -> Feed:
    """The feed ``data.feed`` names, on ``device``."""
    if name == "device":
        return DeviceFeed(cache, device)
    if name == "host":
        return HostFeed(cache, device, workers)
    raise ValueError(f"data.feed: {name!r} is not one of {list(FEEDS)}")
