"""The feeds that bring cached pixels to the device (agman.data.feed): the same pixels whichever
reads them."""

import numpy as np
import pytest
import torch

from agman.data.cache import ImageCache, write_cache
from agman.data.feed import DeviceFeed, HostFeed, build_feed
from tests.data.test_cache import write_images

CPU = torch.device("cpu")
BATCHES = [np.array([3, 0, 3, 5]), np.array([1]), np.array([4, 2, 0])]


@pytest.fixture(scope="module")
def caches(tmp_path_factory):
    folder = tmp_path_factory.mktemp("feed")
    paths = write_images(folder / "raw", 6)
    return {fmt: (write_cache(paths, folder / "raw", folder / fmt, 16, fmt=fmt), ImageCache(folder / fmt))[1]
            for fmt in ("array", "jpeg")}


@pytest.mark.parametrize("fmt", ["array", "jpeg"])
@pytest.mark.parametrize("workers", [0, 2])
def test_host_feed_hands_out_each_batch_of_entries_in_order(caches, fmt, workers):
    cache = caches[fmt]
    feed = HostFeed(cache, CPU, workers)
    for _ in range(2):  # the workers persist: each call runs the batches it is given
        got = list(feed(BATCHES))
        assert len(got) == len(BATCHES)
        for entries, batch in zip(BATCHES, got, strict=True):
            assert batch.dtype == torch.uint8 and batch.shape == (len(entries), 3, 16, 16)
            assert batch.is_contiguous(memory_format=torch.channels_last)
            assert torch.equal(batch, torch.stack([cache[int(i)] for i in entries]))
    assert [len(b) for b in feed(BATCHES[1:])] == [1, 3]


def test_device_feed_holds_the_array_cache_and_gives_the_same_pixels(caches):
    host, device = HostFeed(caches["array"], CPU, 0), build_feed("device", caches["array"], CPU, 0)
    assert isinstance(device, DeviceFeed) and device.images.shape == (6, 16, 16, 3)
    for a, b in zip(host(BATCHES), device(BATCHES), strict=True):
        assert torch.equal(a, b) and b.is_contiguous(memory_format=torch.channels_last)


def test_device_feed_refuses_a_jpeg_cache_and_unknown_feeds_are_named(caches):
    with pytest.raises(ValueError, match="data.feed: device needs data.cache.format: array"):
        DeviceFeed(caches["jpeg"], CPU)
    with pytest.raises(ValueError, match="data.feed: 'disk' is not one of"):
        build_feed("disk", caches["array"], CPU, 0)
