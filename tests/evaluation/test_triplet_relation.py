"""The triplet relation evaluation's per-triplet rows and its refusals."""

import numpy as np
import pytest
import torch
from PIL import Image

from agman.data.cache import ImageCache, write_cache
from agman.evaluation.triplet_relation import evaluate_triplets
from tests.data.test_cache import ColourModel


@pytest.fixture
def colour_cache(tmp_path) -> ImageCache:
    colours = [(250, 10, 10), (240, 30, 10), (10, 250, 10), (10, 10, 250)]  # red, red-ish, green, blue
    for i, colour in enumerate(colours):
        Image.new("RGB", (8, 8), colour).save(tmp_path / f"{i}.png")
    write_cache([f"{i}.png" for i in range(4)], tmp_path, tmp_path / "cache", 8, "array")
    return ImageCache(tmp_path / "cache")


def run(cache, triplets, names=("c0", "c1")):
    return evaluate_triplets(ColourModel(), np.array(triplets), np.arange(4), cache, list(names), margin=0.2,
                             batch_size=2, device=torch.device("cpu"))


def test_per_item_rows_follow_condition_then_list_order_with_each_outcome(colour_cache):
    # condition 1 listed first: rows come out by condition (c0 first), then in list order.
    out = run(colour_cache, [[0, 2, 1, 1], [0, 1, 2, 0], [0, 1, 3, 0]])
    items = out["per_item"]
    assert list(items["condition"]) == ["c0", "c0", "c1"]
    assert list(items["correct"]) == [1, 1, 0]  # red-ish is closer to red than green or blue; not the reverse
    assert (items["loss"] >= 0).all() and items.loc[2, "loss"] > 0.2  # wrong by a margin: loss above m
    assert items["loss"].mean() == pytest.approx(out["loss"])
    assert out["per_condition"]["c0"] == {"accuracy": 1.0, "loss": pytest.approx(items["loss"][:2].mean()),
                                          "n_triplets": 2}
    assert out["accuracy"] == pytest.approx(2 / 3)


def test_no_triplets_and_an_unknown_condition_are_refused(colour_cache):
    with pytest.raises(ValueError, match="^no triplets to evaluate$"):
        run(colour_cache, np.zeros((0, 4), dtype=np.int64))
    with pytest.raises(ValueError, match="^1 triplets have a condition index outside 0-1$"):
        run(colour_cache, [[0, 1, 2, 0], [0, 1, 2, 5]])
