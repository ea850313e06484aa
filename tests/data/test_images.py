"""Tests for the per-item transform of the torch datasets (agman.data.images)."""

import pytest
import torch
from torchvision.transforms import v2

from agman.data.images import IMAGENET_MEAN, IMAGENET_STD, build_transform


@pytest.mark.parametrize("train", [True, False])
def test_transform_equals_torchvision_v2_bit_for_bit(train):
    """build_transform is torchvision v2's flip + ToDtype + Normalize as plain tensor ops: same
    values, same random draws (so seeded runs are unchanged), without v2's per-call overhead."""
    steps = [v2.RandomHorizontalFlip()] if train else []
    reference = v2.Compose(steps + [v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    ours = build_transform(train)
    images = torch.randint(0, 256, (12, 3, 9, 7), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    images = [images[i] for i in range(len(images))] + [images[0].permute(0, 2, 1)]  # incl. a strided view
    torch.manual_seed(5)
    expected = [reference(x) for x in images]
    after_reference = torch.rand(1)
    torch.manual_seed(5)
    got = [ours(x) for x in images]
    assert torch.equal(torch.rand(1), after_reference)  # the same number of draws
    for e, g in zip(expected, got):
        assert e.dtype == g.dtype == torch.float32 and torch.equal(e, g)
    if train:  # both outcomes of the coin occurred
        assert any(torch.equal(g, ours.__class__(False)(x)) for g, x in zip(got, images))
        assert any(not torch.equal(g, ours.__class__(False)(x)) for g, x in zip(got, images))
    with pytest.raises(TypeError, match="uint8"):
        ours(torch.zeros(3, 2, 2))
