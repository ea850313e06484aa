"""The resized image cache: formats, bad images; and the triplet relation evaluation read from it."""

import logging

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from agman.data.cache import ImageCache, decode_resized, write_cache
from agman.data.feed import HostFeed
from agman.data.images import normalise
from agman.evaluation.retrieval import EmbedSettings
from agman.evaluation.triplet_relation import evaluate_triplets
from agman.models.agman import ModelOutput


def write_images(root, n=6, size=(40, 30)):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = f"img/{i}.jpg"
        (root / "img").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(root / path, quality=95)
        paths.append(path)
    return paths


def test_decode_resized_crops_the_center_of_the_shorter_side(tmp_path):
    pixels = np.zeros((30, 60, 3), dtype=np.uint8)  # (H, W, 3): wide image
    pixels[:, 15:45] = 255  # white centre band, exactly the middle 30 columns
    Image.fromarray(pixels).save(tmp_path / "a.png")
    out = decode_resized(tmp_path / "a.png", 10)
    assert out.shape == (10, 10, 3) and out.dtype == np.uint8
    assert out.min() > 200  # the crop is the white centre


@pytest.mark.parametrize("fmt", ["array", "jpeg"])
def test_cache_round_trip(tmp_path, fmt):
    paths = write_images(tmp_path)
    report = write_cache(paths, tmp_path, tmp_path / "cache", 16, fmt=fmt, jpeg_quality=95)
    assert report.images == len(paths) and not report.skipped
    cache = ImageCache(tmp_path / "cache")
    assert len(cache) == len(paths)
    for i, path in enumerate(paths):
        item = cache[i]
        assert item.shape == (3, 16, 16) and item.dtype == torch.uint8
        expected = torch.tensor(decode_resized(tmp_path / path, 16)).permute(2, 0, 1).float()
        tolerance = 0 if fmt == "array" else 12  # re-encoding random noise costs 8-9 levels on average
        assert (item.float() - expected).abs().mean() <= tolerance
    if fmt == "jpeg":
        assert report.bytes == (tmp_path / "cache" / "images.bin").stat().st_size


def gradient(shade: int, size=(40, 30)) -> np.ndarray:
    """(H, W, 3) uint8: red rises left to right, green top to bottom, blue constant."""
    w, h = size
    x, y = np.linspace(0, 1, w)[None, :], np.linspace(0, 1, h)[:, None]
    red, green = (40 + 200 * x) * np.ones_like(y), (30 + 180 * y) * np.ones_like(x)
    return np.stack([red, green, np.full((h, w), 60.0 + 30 * shade)], axis=-1).astype(np.uint8)


def test_the_jpeg_cache_keeps_orientation_and_channel_order(tmp_path):
    (tmp_path / "img").mkdir()
    paths = []
    for i in range(4):
        Image.fromarray(gradient(i)).save(tmp_path / f"img/{i}.jpg", quality=95)
        paths.append(f"img/{i}.jpg")
    write_cache(paths, tmp_path, tmp_path / "cache", 16, fmt="jpeg", jpeg_quality=90)
    cache = ImageCache(tmp_path / "cache")
    for i, path in enumerate(paths):
        item = cache[i].float()  # (3, 16, 16)
        expected = torch.tensor(decode_resized(tmp_path / path, 16)).permute(2, 0, 1).float()
        # Smooth images re-encode within about 1.5 levels; a mirrored image is 26 off, RGB read
        # as BGR 27 or more.
        assert (item - expected).abs().mean() <= 4
        assert (item - expected.flip(2)).abs().mean() > 20
        assert (item - expected.flip(0)).abs().mean() > 20


@pytest.mark.parametrize("fmt", ["array", "jpeg"])
def test_cache_digest_follows_the_pixels_not_just_the_paths(tmp_path, fmt):
    paths = write_images(tmp_path)
    write_cache(paths, tmp_path, tmp_path / "a", 16, fmt=fmt)
    write_cache(paths, tmp_path, tmp_path / "b", 16, fmt=fmt)
    assert ImageCache(tmp_path / "a").sha256 == ImageCache(tmp_path / "b").sha256  # deterministic
    Image.new("RGB", (40, 30), (200, 10, 10)).save(tmp_path / paths[2])  # re-rendered, same path
    write_cache(paths, tmp_path, tmp_path / "c", 16, fmt=fmt)
    assert ImageCache(tmp_path / "c").sha256 != ImageCache(tmp_path / "a").sha256
    meta = tmp_path / "c" / "cache.json"
    meta.write_text(meta.read_text().replace('"sha256"', '"old"'))
    with pytest.raises(ValueError, match="cache.json: written by an older version"):
        ImageCache(tmp_path / "c")


def test_corrupt_and_truncated_images_are_skipped_and_listed(tmp_path, caplog):
    paths = write_images(tmp_path)
    (tmp_path / paths[1]).write_bytes(b"not a jpeg at all")
    data = (tmp_path / paths[3]).read_bytes()
    (tmp_path / paths[3]).write_bytes(data[: len(data) // 2])  # truncated mid-scan
    with caplog.at_level(logging.WARNING):
        report = write_cache(paths, tmp_path, tmp_path / "cache", 16, fmt="jpeg")
    assert [p for p, _ in report.skipped] == [paths[1], paths[3]]
    assert "2 of 6 images do not decode" in caplog.text
    skipped = pd.read_csv(tmp_path / "cache" / "skipped.csv")
    assert list(skipped["path"]) == [paths[1], paths[3]] and skipped["reason"].str.contains("cannot decode").all()
    index = pd.read_csv(tmp_path / "cache" / "index.csv")
    assert list(index["path"]) == [paths[i] for i in (0, 2, 4, 5)] and list(index["entry"]) == [0, 1, 2, 3]


def test_missing_image_stops_and_leaves_nothing(tmp_path):
    paths = write_images(tmp_path)
    (tmp_path / paths[2]).unlink()
    with pytest.raises(FileNotFoundError, match="2.jpg"):
        write_cache(paths, tmp_path, tmp_path / "cache", 16, fmt="array")
    assert not (tmp_path / "cache").exists() and not list(tmp_path.glob("cache.tmp*"))


def test_nothing_decodes(tmp_path):
    (tmp_path / "x.jpg").write_bytes(b"junk")
    with pytest.raises(OSError, match="none of the 1 images"):
        write_cache(["x.jpg"], tmp_path, tmp_path / "cache", 16, fmt="array")
    assert not list(tmp_path.glob("cache.tmp*"))


class ColourModel(torch.nn.Module):
    """Embedding = the L2-normalised mean colour of the image, the same for every condition."""

    def encode(self, images):
        return torch.nn.functional.normalize(images.mean(dim=(2, 3)), dim=1)  # (B, 3)

    def condition(self, features, attr):
        return features

    def forward(self, images, attr):
        return ModelOutput(self.encode(images), None, torch.zeros(len(images), 1, 1, 1))


def test_triplet_relation_evaluation_against_hand_computed_values(tmp_path):
    colours = [(250, 10, 10), (240, 30, 10), (10, 250, 10), (10, 10, 250)]  # red, red-ish, green, blue
    paths = []
    for i, colour in enumerate(colours):
        Image.new("RGB", (8, 8), colour).save(tmp_path / f"{i}.png")
        paths.append(f"{i}.png")
    write_cache(paths, tmp_path, tmp_path / "cache", 8, fmt="array")
    cache = ImageCache(tmp_path / "cache")
    # (anchor, close, far, condition), rows of the cache; the last has close == far (a tie).
    triplets = np.array([[0, 1, 2, 0], [0, 1, 3, 1], [2, 3, 1, 1], [3, 0, 0, 2]])
    out = evaluate_triplets(ColourModel(), triplets, np.arange(4), HostFeed(cache, torch.device("cpu"), 0),
                            ["c0", "c1", "c2"], margin=0.2, settings=EmbedSettings(batch_size=2))
    # The same numbers triplet by triplet, from the images as the evaluation transforms them.
    emb = ColourModel()(normalise(torch.stack([cache[i] for i in range(4)])), None).embedding
    s = emb @ emb.T
    correct = [float(s[a, c] > s[a, f]) for a, c, f, _ in triplets]
    loss = [max(0.0, 0.2 + float(s[a, f] - s[a, c])) for a, c, f, _ in triplets]
    assert out["accuracy"] == pytest.approx(np.mean(correct)) and out["n_triplets"] == 4
    assert out["loss"] == pytest.approx(np.mean(loss), abs=1e-6)
    assert correct[:2] == [1.0, 1.0] and correct[3] == 0.0  # red is nearest red-ish; a tie is wrong
    assert out["per_condition"]["c1"]["accuracy"] == pytest.approx(np.mean(correct[1:3]))
    assert out["per_condition"]["c2"]["n_triplets"] == 1
