"""The triplet relation evaluation's per-triplet rows, its numbers by hand, what it hands ``embed``, and its
refusals."""

import inspect

import numpy as np
import pytest
import torch
from PIL import Image

from agman.data.cache import ImageCache, write_cache
from agman.data.feed import HostFeed
from agman.evaluation import retrieval, triplet_relation
from agman.evaluation.retrieval import EmbedSettings
from agman.evaluation.triplet_relation import evaluate_triplets
from tests.data.test_cache import ColourModel


@pytest.fixture
def colour_cache(tmp_path) -> ImageCache:
    colours = [(250, 10, 10), (240, 30, 10), (10, 250, 10), (10, 10, 250)]  # red, red-ish, green, blue
    for i, colour in enumerate(colours):
        Image.new("RGB", (8, 8), colour).save(tmp_path / f"{i}.png")
    write_cache([f"{i}.png" for i in range(4)], tmp_path, tmp_path / "cache", 8, fmt="array")
    return ImageCache(tmp_path / "cache")


def run(cache, triplets, names=("c0", "c1")):
    return evaluate_triplets(ColourModel(), np.array(triplets), np.arange(4), HostFeed(cache, torch.device("cpu"), 0),
                             list(names), margin=0.2, settings=EmbedSettings(batch_size=2))


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


# Unit-length embeddings of cache entries 10-13 (table rows 0-3), the same under every condition:
# the similarities below are exact dot products (0.6 * 0.8 + 0.8 * 0.6 = 0.96, etc.).
VECTORS = {10: (1.0, 0.0), 11: (0.8, 0.6), 12: (0.6, 0.8), 13: (0.0, 1.0)}


@pytest.fixture
def embed_calls(monkeypatch) -> list[dict]:
    """``embed`` replaced by a lookup in VECTORS that records its arguments, defaults filled in
    from the real ``embed``'s signature."""
    calls = []
    signature = inspect.signature(retrieval.embed)

    def fake_embed(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        call = dict(bound.arguments)
        call["entries"], call["attributes"] = call["entries"].tolist(), call["attributes"].tolist()
        calls.append(call)
        return torch.tensor([VECTORS[e] for e in call["entries"]], dtype=torch.float32)  # same under every condition

    monkeypatch.setattr(triplet_relation, "embed", fake_embed)
    return calls


def run_by_hand(triplets, names=("toe", "heel"), margin=0.5, **kwargs):
    return evaluate_triplets("model", np.array(triplets), np.arange(10, 14), "feed", list(names), margin=margin,
                             settings="settings", **kwargs)


# (anchor, close, far, condition) in table rows; condition 1 first, so list order is not condition order.
BY_HAND = [[3, 2, 0, 1], [0, 1, 2, 0], [1, 2, 3, 1], [0, 2, 1, 0]]


def test_losses_and_accuracies_use_the_given_margin_not_the_default(embed_calls):
    # margin 0.5; loss = max(0, 0.5 + s(a, far) - s(a, close)):
    #   toe  [0, 1, 2]: s 0.8 vs 0.6, right, loss 0.3    [0, 2, 1]: s 0.6 vs 0.8, wrong, loss 0.7
    #   heel [3, 2, 0]: s 0.8 vs 0.0, right, loss 0      [1, 2, 3]: s 0.96 vs 0.6, right, loss 0.14
    # (at the default margin 0.2 the losses would be 0, 0.4, 0, 0).
    out = run_by_hand(BY_HAND)
    items = out["per_item"]
    assert list(items["correct"]) == [1, 0, 1, 1]
    assert list(items["loss"]) == pytest.approx([0.3, 0.7, 0.0, 0.14])
    assert out["per_condition"] == {"toe": {"accuracy": 0.5, "loss": pytest.approx(0.5), "n_triplets": 2},
                                    "heel": {"accuracy": 1.0, "loss": pytest.approx(0.07), "n_triplets": 2}}
    assert out["accuracy"] == 0.75 and out["loss"] == pytest.approx(0.285) and out["n_triplets"] == 4


def test_per_item_csv_writes_each_outcome_as_0_or_1_not_as_a_float(embed_calls):
    items = run_by_hand(BY_HAND)["per_item"]
    assert items[["condition", "correct"]].to_csv(index=False) == "condition,correct\ntoe,1\ntoe,0\nheel,1\nheel,1\n"


def test_every_image_and_condition_pair_is_embedded_once_in_one_call(embed_calls):
    run_by_hand(BY_HAND, desc="embed test")
    # toe (0) uses rows 0-2, heel (1) all four: each (row, condition) once, sorted by row then condition
    assert embed_calls == [{"model": "model", "feed": "feed", "settings": "settings", "desc": "embed test",
                            "entries": [10, 10, 11, 11, 12, 12, 13], "attributes": [0, 1, 0, 1, 0, 1, 1]}]


def test_without_a_label_it_embeds_under_the_default_one(embed_calls):
    run_by_hand(BY_HAND[1:2])  # toe alone
    (call,) = embed_calls
    assert call["desc"] == "embed" and call["attributes"] == [0, 0, 0]


def test_a_condition_without_triplets_is_skipped_and_the_later_ones_still_count(embed_calls):
    # heel (condition 1) has none; width (condition 2) has [3, 2, 0] (right, loss 0) and [0, 2, 1] (wrong, 0.7).
    out = run_by_hand([[3, 2, 0, 2], [0, 1, 2, 0], [0, 2, 1, 2]], names=("toe", "heel", "width"))
    # rows 0-2 under toe, 0-3 under width, each pair once
    assert (embed_calls[0]["entries"], embed_calls[0]["attributes"]) == ([10, 10, 11, 11, 12, 12, 13],
                                                                         [0, 2, 0, 2, 0, 2, 2])
    assert list(out["per_condition"]) == ["toe", "width"]
    assert out["per_condition"]["width"] == {"accuracy": 0.5, "loss": pytest.approx(0.35), "n_triplets": 2}
    assert out["accuracy"] == pytest.approx(2 / 3) and out["loss"] == pytest.approx(1.0 / 3)
    assert out["n_triplets"] == 3 and list(out["per_item"]["condition"]) == ["toe", "width", "width"]
