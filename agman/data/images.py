"""From cached uint8 pixels to what the network takes: the training flip and the normalisation.

The cache (``agman.data.cache``) already holds each image resized and center-cropped to the
training resolution (docs/model.md: Resize(shorter side) + CenterCrop). :func:`normalise`
mirrors and normalises whole batches on the device that trains (RandomHorizontalFlip for
training only, then ImageNet mean/std). Which images are mirrored is drawn per epoch from the
run's seed (:func:`draw_flips`), not by whatever process reads the pixels, so the pixels a run
trains on do not depend on how they reach the device (``agman.data.feed``) or on how many
processes train.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Mixed into the flips' seed so that they are not the triplet sampler's draws of the same
#: (seed, epoch): the two seeds are both 0 by default.
_FLIP_STREAM = 0x666C6970


def draw_flips(seed: int, epoch: int, n: int) -> np.ndarray:
    """(n, 3) bool: whether the anchor, positive and negative of each of an epoch's ``n``
    triplets are mirrored; a fair coin per image (``v2.RandomHorizontalFlip``'s p = 0.5)."""
    rng = np.random.default_rng([seed, epoch, _FLIP_STREAM])
    return rng.random((n, 3)) < 0.5


@functools.cache
def _imagenet_stats(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    # Made once per device: a CUDA graph cannot capture the copy that makes them.
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    return mean, std


def normalise(images: torch.Tensor, flips: torch.Tensor | None = None) -> torch.Tensor:
    """(N, 3, S, S) uint8 -> float32 ImageNet-normalised, image ``i`` mirrored where ``flips[i]``.

    Runs where ``images`` are, so batches cross to the GPU as uint8 (a quarter of the bytes)
    and the conversion costs the CPU nothing; the memory format of ``images`` is kept. The same
    arithmetic as ``v2.Compose([v2.RandomHorizontalFlip(), v2.ToDtype(torch.float32,
    scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])`` applied per image, bit for bit
    (tests/data/test_images.py): element-wise ops give the same float32 result whatever the
    batching, and mirroring commutes with them.
    """
    if images.dtype != torch.uint8:
        raise TypeError(f"expected uint8 images from the cache, got {images.dtype}")
    mean, std = _imagenet_stats(images.device)
    if flips is not None:
        # Mirrored as uint8, a quarter of the bytes of float32; no `flips.any()` test, which would
        # wait for the GPU once per batch.
        images = torch.where(flips.view(-1, 1, 1, 1), images.flip(-1), images)  # (N, 3, S, S) uint8
    return images.to(torch.float32).mul_(1.0 / 255).sub_(mean).div_(std)  # (N, 3, S, S)
