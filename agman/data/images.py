"""The torch datasets that feed training and evaluation, reading the resized image cache.

The cache (``agman.data.cache``) already holds each image resized and center-cropped to the
training resolution (docs/model.md: Resize(shorter side) + CenterCrop). The datasets hand out
those uint8 pixels as they are, with the training flip drawn per image; :func:`normalise` then
mirrors and normalises whole batches on the device that trains (RandomHorizontalFlip for
training only, then ImageNet mean/std).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from agman.data.cache import ImageCache

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def draw_flip(train: bool) -> bool:
    """Whether to mirror one training image: one coin per image, the draw torchvision's
    ``v2.RandomHorizontalFlip`` makes per call, so seeded runs keep the flips they had when the
    flip ran in the dataset. Always False for evaluation."""
    return bool(train and torch.rand(1) < 0.5)


def normalise(images: torch.Tensor, flips: torch.Tensor | None = None) -> torch.Tensor:
    """(N, 3, S, S) uint8 -> float32 ImageNet-normalised, image ``i`` mirrored where ``flips[i]``.

    Runs where ``images`` are, so batches cross to the GPU as uint8 (a quarter of the bytes)
    and the conversion costs the DataLoader's CPU cores nothing. The same arithmetic as
    ``v2.Compose([v2.RandomHorizontalFlip(), v2.ToDtype(torch.float32, scale=True),
    v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])`` applied per image, bit for bit
    (tests/data/test_images.py): element-wise ops give the same float32 result whatever the
    batching, and mirroring commutes with them.
    """
    if images.dtype != torch.uint8:
        raise TypeError(f"expected uint8 images from the cache, got {images.dtype}")
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32, device=images.device).view(1, 3, 1, 1)
    if flips is not None:
        # Mirrored as uint8, a quarter of the bytes of float32; no `flips.any()` test, which would
        # wait for the GPU once per batch.
        images = torch.where(flips.view(-1, 1, 1, 1), images.flip(-1), images)  # (N, 3, S, S) uint8
    return images.to(torch.float32).mul_(1.0 / 255).sub_(mean).div_(std)  # (N, 3, S, S)


def triplet_batch(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, flips: torch.Tensor,
                  device: torch.device) -> torch.Tensor:
    """A collated :class:`TripletDataset` batch as the model takes it: (3B, 3, S, S) float32 on
    ``device``, anchors then positives then negatives. The pixels cross as uint8 (non-blocking
    from pinned memory on CUDA) and are mirrored and normalised there."""
    images = torch.cat([anchor, positive, negative]).to(device, non_blocking=True)  # (3B, 3, S, S) uint8
    flips = flips.t().reshape(-1).to(device, non_blocking=True)  # (B, 3) -> (3B,), in the order of images
    return normalise(images, flips)


class TripletDataset(Dataset):
    """Item ``i`` = (anchor, positive, negative, attribute_index, flips) of triplet row ``i``:
    three (3, S, S) uint8 images and a (3,) bool tensor, whether :func:`normalise` mirrors each.

    ``triplets`` (T, 4) holds table rows; ``entries[row]`` is that row's image in the cache.
    """

    def __init__(self, cache: ImageCache, entries: np.ndarray, triplets: np.ndarray):
        self.cache, self.entries, self.triplets = cache, entries, triplets

    def __len__(self) -> int:
        return len(self.triplets)

    def __getitem__(self, i: int):
        a, p, n, attr = (int(x) for x in self.triplets[i])
        images = [self.cache[int(self.entries[k])] for k in (a, p, n)]
        flips = torch.tensor([draw_flip(True) for _ in images])  # (3,) in the order a, p, n
        return (*images, attr, flips)


class ImageDataset(Dataset):
    """Item ``i`` = ((3, S, S) uint8 image of cache entry ``entries[i]``, ``attributes[i]``), for
    embedding (:func:`normalise` follows, unflipped)."""

    def __init__(self, cache: ImageCache, entries: np.ndarray, attributes: np.ndarray):
        if len(entries) != len(attributes):
            raise ValueError(f"{len(entries)} images but {len(attributes)} attribute indices")
        self.cache, self.entries, self.attributes = cache, entries, attributes

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int):
        return self.cache[int(self.entries[i])], int(self.attributes[i])
