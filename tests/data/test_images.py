"""The torch datasets' pixels and the batch normalisation that follows them (agman.data.images)."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, default_collate
from torchvision.transforms import v2

from agman.data.images import (IMAGENET_MEAN, IMAGENET_STD, ImageDataset, TripletDataset, draw_flip, normalise,
                               triplet_batch)


class ListCache:
    """A stand-in ImageCache: entry ``i`` is ``images[i]``, (3, S, S) uint8."""

    def __init__(self, images):
        self.images = images

    def __getitem__(self, i):
        return self.images[i]


def reference_transform(train: bool):
    """The per-item transform the datasets applied before normalisation moved to the device."""
    steps = [v2.RandomHorizontalFlip()] if train else []
    return v2.Compose(steps + [v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def random_images(n: int, height: int = 9, width: int = 7) -> list[torch.Tensor]:
    images = torch.randint(0, 256, (n, 3, height, width), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    return [images[i] for i in range(n)]


def test_training_batches_are_torchvision_v2s_flip_and_normalisation_bit_for_bit():
    """uint8 batches mirrored and normalised after collation hold exactly the numbers that the
    per-item v2 transform gave, from the same random draws, so seeded runs are unchanged."""
    images = random_images(12)
    triplets = np.array([[i, (i + 1) % 12, (i + 5) % 12, i % 3] for i in range(12)])
    reference = reference_transform(train=True)
    torch.manual_seed(5)
    expected = [torch.stack([reference(images[k]) for k in row[:3]]) for row in triplets]  # per item: (3, 3, H, W)
    after_reference = torch.rand(1)

    torch.manual_seed(5)
    dataset = TripletDataset(ListCache(images), np.arange(12), triplets)
    # Collated as a DataLoader does (one built here would draw its own base seed first).
    batches = [default_collate([dataset[i] for i in range(start, start + 4)]) for start in (0, 4, 8)]
    got = []
    for anchor, positive, negative, attr, flips in batches:
        assert anchor.dtype == torch.uint8 and flips.shape == (4, 3)
        batch = triplet_batch(anchor, positive, negative, flips, torch.device("cpu"))
        got += [torch.stack([batch[i], batch[4 + i], batch[8 + i]]) for i in range(4)]
    assert torch.equal(torch.rand(1), after_reference)  # the same number of draws
    assert len(got) == len(expected)
    for e, g in zip(expected, got):
        assert g.dtype == torch.float32 and torch.equal(e, g)


def test_both_sides_of_the_coin_occur_and_a_flip_mirrors_the_width():
    torch.manual_seed(0)
    draws = [draw_flip(True) for _ in range(40)]
    assert any(draws) and not all(draws)
    assert not any(draw_flip(False) for _ in range(40))
    image = random_images(1)[0][None]
    assert torch.equal(normalise(image, torch.tensor([True])), normalise(image).flip(-1))
    assert not torch.equal(normalise(image, torch.tensor([True])), normalise(image))


def test_evaluation_images_are_normalised_unflipped_as_v2_normalises_them():
    images = random_images(5) + [random_images(1)[0].permute(0, 2, 1).contiguous()[:, :7, :7]]
    images = [x[:, :7, :7] for x in images]  # incl. a strided view
    loader = DataLoader(ImageDataset(ListCache(images), np.arange(6), np.zeros(6, dtype=int)), batch_size=6)
    (batch, _), = list(loader)
    assert batch.dtype == torch.uint8
    expected = torch.stack([reference_transform(train=False)(x) for x in images])
    assert torch.equal(normalise(batch), expected)


def test_normalise_refuses_anything_but_uint8_pixels():
    with pytest.raises(TypeError, match="uint8"):
        normalise(torch.zeros(1, 3, 2, 2))
