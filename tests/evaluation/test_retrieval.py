"""Scoring a retrieval split: per attribute type, queries against that type's candidates only;
overall MAP weighted by queries (the number the paper prints), macro MAP beside it."""

import contextlib
import math

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import agman.metrics
from agman.data.cache import ImageCache, write_cache
from agman.data.feed import HostFeed
from agman.data.images import normalise
from agman.evaluation import retrieval
from agman.evaluation.retrieval import EmbedSettings, embed, evaluate_retrieval, score_split

S = 1 / math.sqrt(1 + 0.1 ** 2)  # a unit vector near (1, 0)


def split_with_rows():
    # attribute 0 (colour): candidates c1 (value 0) at (1, 0) and c2 (value 1) at (0, 1);
    #   q1 (value 0) at (1, 0): c1 first, AP 1; q2 (value 0) at (0, 1): c2 then c1, AP 1/2;
    #   q3 (value 1) at (0, 1): c2 first, AP 1. MAP 5/6.
    # attribute 1 (size): candidates d1 (value 1) at (1, 0) and d2 (value 0) at (0, 1);
    #   qs (value 0) at ~(1, 0.1): d1 then d2, AP 1/2. Were colour's c1 (value 0, at (1, 0)) a
    #   candidate of qs, it would rank first and count as relevant: AP 1.
    rows = [
        ("candidate", 0, 0, (1.0, 0.0)), ("candidate", 0, 1, (0.0, 1.0)),
        ("query", 0, 0, (1.0, 0.0)), ("query", 0, 0, (0.0, 1.0)), ("query", 0, 1, (0.0, 1.0)),
        ("candidate", 1, 1, (1.0, 0.0)), ("candidate", 1, 0, (0.0, 1.0)),
        ("query", 1, 0, (S, 0.1 * S)),
    ]
    table = pd.DataFrame({"role": [r[0] for r in rows], "attribute_index": [r[1] for r in rows],
                          "value": [r[2] for r in rows]})
    return table, torch.tensor([r[3] for r in rows])


def test_overall_map_is_the_mean_over_queries_and_macro_the_mean_over_attribute_types():
    table, emb = split_with_rows()
    out = score_split(emb, table, ["colour", "size"])
    assert out["map_per_attribute"] == pytest.approx({"colour": 5 / 6, "size": 0.5})
    assert out["map"] == pytest.approx((1 + 0.5 + 1 + 0.5) / 4)  # 0.75
    assert out["map_macro"] == pytest.approx((5 / 6 + 0.5) / 2)  # 0.667
    assert (out["n_queries"], out["n_candidates"]) == (4, 4)
    assert list(out["per_item"]["ap"]) == pytest.approx([1, 0.5, 1, 0.5])
    assert list(out["per_item"]["attribute"]) == ["colour", "colour", "colour", "size"]


def test_a_query_is_ranked_against_the_candidates_of_its_own_attribute_type_only():
    table, emb = split_with_rows()
    assert score_split(emb, table, ["colour", "size"])["map_per_attribute"]["size"] == pytest.approx(0.5)
    # The same query with colour's candidates gone from the split keeps its AP: they were never its.
    alone = table.drop(index=[0, 1, 2, 3, 4]).reset_index(drop=True)
    assert score_split(emb[5:], alone, ["colour", "size"])["map"] == pytest.approx(0.5)


def test_a_query_whose_value_no_candidate_has_scores_zero_and_still_counts():
    # attribute 0: candidates of values 0 and 0 and 1; queries of value 0 and of value 2 (no candidate)
    table = pd.DataFrame({"role": ["candidate"] * 3 + ["query"] * 2, "attribute_index": [0] * 5,
                          "value": [0, 0, 1, 0, 2]})
    emb = torch.tensor([[1.0, 0.0], [0.0, 1.0], [S, 0.1 * S], [1.0, 0.0], [1.0, 0.0]])
    out = score_split(emb, table, ["colour"])
    assert list(out["per_item"]["ap"]) == pytest.approx([(1 + 2 / 3) / 2, 0.0])  # ranks 1 and 3; no relevant
    assert list(out["per_item"]["chance_ap"])[1] == 0.0
    assert out["map"] == pytest.approx((1 + 2 / 3) / 4)
    assert (out["n_queries"], out["n_candidates"]) == (2, 3)


def test_a_split_without_queries_is_refused():
    table = pd.DataFrame({"role": ["candidate"], "attribute_index": [0], "value": [0]})
    with pytest.raises(ValueError, match="^the split has no queries$"):
        score_split(torch.tensor([[1.0, 0.0]]), table, ["colour"])


# Embedding a split: what reaches the model, in which order and batches, and on which device.

CPU = torch.device("cpu")


@pytest.fixture
def grey_cache(tmp_path) -> ImageCache:
    """Four 8x8 grey images, entry i brighter than entry i - 1."""
    for i in range(4):
        Image.new("RGB", (8, 8), (40 + 60 * i,) * 3).save(tmp_path / f"{i}.png")
    write_cache([f"{i}.png" for i in range(4)], tmp_path, tmp_path / "cache", 8, fmt="array")
    return ImageCache(tmp_path / "cache")


class GreyModel(torch.nn.Module):
    """encode: an image's mean brightness; condition: (brightness, attribute index) as the
    embedding. Records every call, so what is shared and what is per row shows."""

    def __init__(self):
        super().__init__()
        self.encoded, self.conditioned = [], []  # images per encode call; (features, attributes) per condition call

    def encode(self, images):
        self.encoded.append(images)
        return images.float().mean(dim=(1, 2, 3))[:, None]  # (b, 1)

    def condition(self, features, attr):
        self.conditioned.append((features, attr))
        return torch.cat([features, attr[:, None].to(features.dtype)], dim=1)  # (R, 2)


@pytest.fixture
def spy(monkeypatch):
    """Records the progress bar's settings, the precision asked of autocast, and the query blocks
    the metric ranks at a time."""
    seen = {"bar": [], "amp": [], "blocks": []}

    def bar(iterable, **kwargs):
        seen["bar"].append({k: v for k, v in kwargs.items() if k != "total"})
        return iterable

    def amp(device, amp_dtype):
        seen["amp"].append((device.type, amp_dtype))
        return contextlib.nullcontext()

    rank = agman.metrics._average_precisions_cpu

    def blocks(sim, rel):
        seen["blocks"].append(sim.shape[0])
        return rank(sim, rel)

    monkeypatch.setattr(retrieval, "tqdm", bar)
    monkeypatch.setattr(retrieval, "autocast_context", amp)
    monkeypatch.setattr(agman.metrics, "_average_precisions_cpu", blocks)
    return seen


def grey(cache, entry) -> float:
    """An entry's brightness after the normalisation the model sees."""
    return float(normalise(cache[entry][None]).mean())


def test_embed_encodes_each_image_once_and_conditions_each_row_on_its_attribute(grey_cache, spy):
    model = GreyModel()
    entries, attributes = np.array([3, 0, 2, 1, 3, 0]), np.array([1, 0, 2, 1, 0, 2])
    out = embed(model, HostFeed(grey_cache, CPU, 0), entries, attributes, EmbedSettings(batch_size=3))
    expected = torch.tensor([[grey(grey_cache, e), a] for e, a in zip(entries, attributes, strict=True)])
    torch.testing.assert_close(out, expected)  # rows in the order asked, each under its own attribute
    assert [len(images) for images in model.encoded] == [3, 1]  # 4 distinct images in batches of 3
    assert sorted(round(b, 4) for images in model.encoded for b in images.float().mean(dim=(1, 2, 3)).tolist()) \
        == sorted(round(grey(grey_cache, e), 4) for e in range(4))  # each image once
    assert sum(len(attr) for _, attr in model.conditioned) == 6
    assert spy["bar"] == [{"desc": "embed", "leave": False, "unit": "batch"}]
    assert spy["amp"] == [("cpu", "none")] * 2


def test_embed_passes_on_its_progress_label_precision_and_memory_format(grey_cache, spy, monkeypatch):
    model = GreyModel()
    settings = EmbedSettings(batch_size=4, amp_dtype="bfloat16", memory_format=torch.channels_last)
    embed(model, HostFeed(grey_cache, CPU, 0), np.array([0, 1]), np.array([0, 0]), settings, desc="embed val")
    assert spy["bar"] == [{"desc": "embed val", "leave": False, "unit": "batch"}]
    assert spy["amp"] == [("cpu", "bfloat16")]
    assert model.encoded[0].dtype == torch.float32 and model.encoded[0].is_contiguous(memory_format=torch.channels_last)


def test_embed_refuses_unaligned_rows_and_returns_an_empty_block(grey_cache):
    feed = HostFeed(grey_cache, CPU, 0)
    with pytest.raises(ValueError, match="2 images but 1 attribute indices"):
        embed(GreyModel(), feed, np.array([0, 1]), np.array([0]), EmbedSettings(2))
    empty = embed(GreyModel(), feed, np.array([], dtype=np.int64), np.array([], dtype=np.int64), EmbedSettings(2))
    assert empty.shape == (0, 1)


def split_table() -> tuple[pd.DataFrame, dict]:
    # Test rows with the embedding of each (entry, attribute) the stub model hands out:
    #   colour query v0 (1, 0) and query v1 (0, 1); candidates v1 (0.8, 0.6) and v0 (0.6, 0.8):
    #     q v0 ranks v1 (0.8) then v0: AP 1/2; q v1 ranks v0 (0.8) then v1: AP 1/2.
    #   size query v1 (0, 1); candidates v1 (0.6, 0.8) and v0 (0.8, 0.6): v1 first, AP 1.
    # map = (1/2 + 1/2 + 1) / 3 = 2/3, macro (1/2 + 1) / 2 = 3/4. Train rows would change all of it.
    rows = [  # split, role, attribute_index, value, entry
        ("train", "candidate", 0, 0, 0),
        ("test", "query", 0, 0, 1), ("test", "candidate", 0, 1, 2), ("test", "candidate", 0, 0, 3),
        ("train", "query", 0, 1, 0),
        ("test", "query", 1, 1, 2), ("test", "candidate", 1, 1, 0), ("test", "candidate", 1, 0, 1),
        ("test", "query", 0, 1, 3),
    ]
    table = pd.DataFrame(rows, columns=["split", "role", "attribute_index", "value", "entry"])
    vectors = {(1, 0): [1.0, 0.0], (2, 0): [0.8, 0.6], (3, 0): [0.6, 0.8], (2, 1): [0.0, 1.0], (0, 1): [0.6, 0.8],
               (1, 1): [0.8, 0.6]}
    return table, vectors


class LookupModel(GreyModel):
    """The embedding of (entry, attribute) from a table; entries told apart by brightness."""

    def __init__(self, cache, vectors):
        super().__init__()
        self.by_grey = {round(grey(cache, e), 4): e for e in range(len(cache))}
        self.vectors = vectors

    def condition(self, features, attr):
        super().condition(features, attr)
        return torch.tensor([self.vectors[(self.by_grey[round(float(f), 4)], int(a))]
                             for f, a in zip(features, attr, strict=True)])


def test_evaluate_retrieval_embeds_the_split_and_scores_it(grey_cache, spy):
    table, vectors = split_table()
    model = LookupModel(grey_cache, vectors)
    out = evaluate_retrieval(model, table, HostFeed(grey_cache, CPU, 0), "test", ["colour", "size"],
                             settings=EmbedSettings(batch_size=4), chunk_size=1)
    assert out["map"] == pytest.approx(2 / 3) and out["map_macro"] == pytest.approx(3 / 4)
    assert out["map_per_attribute"] == pytest.approx({"colour": 0.5, "size": 1.0})
    assert (out["n_queries"], out["n_candidates"]) == (3, 4)
    assert [len(images) for images in model.encoded] == [4]  # the test rows' four images, once each
    assert sorted(int(a) for _, attr in model.conditioned for a in attr) == [0, 0, 0, 0, 1, 1, 1]
    assert spy["blocks"] == [1, 1, 1]  # chunk_size queries at a time
    assert spy["bar"] == [{"desc": "embed test", "leave": False, "unit": "batch"}]


def test_score_split_ranks_chunk_size_queries_at_a_time_1024_unless_told(spy):
    # 1030 queries of one type against two candidates: blocks of 1024 and 6 by default.
    n = 1030
    table = pd.DataFrame({"role": ["query"] * n + ["candidate"] * 2, "attribute_index": 0,
                          "value": [0] * n + [0, 1]})
    emb = torch.nn.functional.normalize(torch.randn(n + 2, 3, generator=torch.Generator().manual_seed(0)), dim=1)
    score_split(emb, table, ["colour"])
    assert spy["blocks"] == [1024, 6]
    spy["blocks"].clear()
    score_split(emb, table, ["colour"], chunk_size=500)
    assert spy["blocks"] == [500, 500, 30]
