"""The flips and the batch normalisation between the cached pixels and the network (agman.data.images)."""

import numpy as np
import pytest
import torch
from torchvision.transforms import v2

from agman.data.images import IMAGENET_MEAN, IMAGENET_STD, draw_flips, normalise


def reference_transform(flip: bool):
    """The per-image transform of torchvision's v2, with the flip forced one way."""
    steps = [v2.RandomHorizontalFlip(p=1.0)] if flip else []
    return v2.Compose(steps + [v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def random_images(n: int, height: int = 9, width: int = 7) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, height, width), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_training_batches_are_torchvision_v2s_flip_and_normalisation_bit_for_bit(layout):
    """A uint8 batch mirrored and normalised at once holds exactly the numbers of v2's per-image
    transform, in either memory layout the feeds hand out."""
    images = random_images(12)
    flips = torch.from_numpy(draw_flips(0, 0, 4).T.reshape(-1).copy())  # (12,) a, then p, then n
    assert flips.any() and not flips.all()
    got = normalise(images.contiguous(memory_format=layout), flips)
    expected = torch.stack([reference_transform(bool(f))(x) for x, f in zip(images, flips, strict=True)])
    assert got.dtype == torch.float32 and torch.equal(got, expected)


def test_a_flip_mirrors_the_width():
    image = random_images(1)
    assert torch.equal(normalise(image, torch.tensor([True])), normalise(image).flip(-1))
    assert not torch.equal(normalise(image, torch.tensor([True])), normalise(image))
    assert torch.equal(normalise(image, torch.tensor([False])), normalise(image))


def test_evaluation_images_are_normalised_unflipped_as_v2_normalises_them():
    images = random_images(6)
    strided = images.permute(0, 1, 3, 2).contiguous()[:, :, :7, :7]  # incl. a strided view
    for batch in (images, strided):
        expected = torch.stack([reference_transform(False)(x) for x in batch])
        assert torch.equal(normalise(batch), expected)


def test_flips_are_fair_coins_of_the_seed_and_epoch_alone():
    a = draw_flips(0, 1, 1000)
    assert a.shape == (1000, 3) and a.dtype == bool and 0.45 < a.mean() < 0.55
    assert np.array_equal(a, draw_flips(0, 1, 1000))  # same seed and epoch: same coins
    assert np.array_equal(draw_flips(0, 1, 10), a[:10])  # a prefix does not depend on the count
    assert not np.array_equal(a, draw_flips(0, 2, 1000)) and not np.array_equal(a, draw_flips(1, 1, 1000))


def test_normalise_refuses_anything_but_uint8_pixels():
    with pytest.raises(TypeError, match="uint8"):
        normalise(torch.zeros(1, 3, 2, 2))
