"""The torch datasets that feed training and evaluation, reading the resized image cache.

The cache (``agman.data.cache``) already holds each image resized and center-cropped to the
training resolution (docs/model.md: Resize(shorter side) + CenterCrop). What is left
happens here per item: RandomHorizontalFlip for training only, then ImageNet mean/std.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from agman.data.cache import ImageCache

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageTransform:
    """(3, S, S) uint8 -> normalised float32, flipped at random when ``train``.

    The same arithmetic and random draws as torchvision's
    ``v2.Compose([v2.RandomHorizontalFlip(), v2.ToDtype(torch.float32, scale=True),
    v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])`` (bit for bit; tests/test_data.py checks), as
    plain tensor ops: v2's per-call dispatch costs more than the arithmetic on a 224 px image
    (benchmarks/data_path.py: cache_jpeg vs cache_jpeg_v2_transform).
    """

    def __init__(self, train: bool):
        self.train = train
        self.mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(3, 1, 1)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        if image.dtype != torch.uint8:
            raise TypeError(f"expected a uint8 image from the cache, got {image.dtype}")
        if self.train and torch.rand(1) < 0.5:  # v2.RandomHorizontalFlip draws one number per call
            image = image.flip(-1)
        return image.to(torch.float32).mul_(1.0 / 255).sub_(self.mean).div_(self.std)


def build_transform(train: bool) -> ImageTransform:
    """(3, S, S) uint8 -> normalised float32, flipped at random when ``train``."""
    return ImageTransform(train)


class TripletDataset(Dataset):
    """Item ``i`` = (anchor, positive, negative, attribute_index) of triplet row ``i``.

    ``triplets`` (T, 4) holds table rows; ``entries[row]`` is that row's image in the cache.
    """

    def __init__(self, cache: ImageCache, entries: np.ndarray, triplets: np.ndarray):
        self.cache, self.entries, self.triplets = cache, entries, triplets
        self.transform = build_transform(train=True)

    def __len__(self) -> int:
        return len(self.triplets)

    def __getitem__(self, i: int):
        a, p, n, attr = (int(x) for x in self.triplets[i])
        images = [self.transform(self.cache[int(self.entries[k])]) for k in (a, p, n)]
        return (*images, attr)


class ImageDataset(Dataset):
    """Item ``i`` = (image of cache entry ``entries[i]``, ``attributes[i]``), for embedding."""

    def __init__(self, cache: ImageCache, entries: np.ndarray, attributes: np.ndarray):
        if len(entries) != len(attributes):
            raise ValueError(f"{len(entries)} images but {len(attributes)} attribute indices")
        self.cache, self.entries, self.attributes = cache, entries, attributes
        self.transform = build_transform(train=False)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int):
        return self.transform(self.cache[int(self.entries[i])]), int(self.attributes[i])
