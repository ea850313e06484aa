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
from agman.evaluation import retrieval
from agman.evaluation.retrieval import embed, evaluate_retrieval, score_split
from agman.models.agman import ModelOutput

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

META = torch.device("meta")  # a device other than the CPU, for where tensors are sent


@pytest.fixture
def grey_cache(tmp_path) -> ImageCache:
    """Four 8x8 grey images, entry i brighter than entry i - 1."""
    for i in range(4):
        Image.new("RGB", (8, 8), (40 + 60 * i,) * 3).save(tmp_path / f"{i}.png")
    write_cache([f"{i}.png" for i in range(4)], tmp_path, tmp_path / "cache", 8, "array")
    return ImageCache(tmp_path / "cache")


class QueueModel(torch.nn.Module):
    """Hands out ``vectors`` in the order the images arrive; records what it was given."""

    def __init__(self, vectors):
        super().__init__()
        self.vectors = torch.as_tensor(vectors, dtype=torch.float32)
        self.batches = []  # (images, attribute indices) per forward call

    def forward(self, images, attr):
        self.batches.append((images, attr))
        start = sum(len(b[0]) for b in self.batches[:-1])
        emb = self.vectors[start:start + len(images)]
        return ModelOutput(emb, None, torch.zeros(len(images), 1, 1, 1))


@pytest.fixture
def spy(monkeypatch):
    """Records the DataLoader settings (then loads in this process), the progress bar's settings,
    the precision asked of autocast, and the query blocks the metric ranks at a time."""
    seen = {"loader": [], "bar": [], "amp": [], "blocks": []}

    class Loader(retrieval.DataLoader):
        def __init__(self, dataset, **kwargs):
            super().__init__(dataset, **{**kwargs, "num_workers": 0})
            seen["loader"].append({"batch_size": self.batch_size, "num_workers": kwargs.get("num_workers", 0),
                                   "sampler": type(self.sampler).__name__})

    def bar(iterable, **kwargs):
        seen["bar"].append(kwargs)
        return iterable

    def amp(device, amp_dtype):
        seen["amp"].append((device.type, amp_dtype))
        return contextlib.nullcontext()

    rank = agman.metrics._average_precisions_cpu

    def blocks(sim, rel):
        seen["blocks"].append(sim.shape[0])
        return rank(sim, rel)

    monkeypatch.setattr(retrieval, "DataLoader", Loader)
    monkeypatch.setattr(retrieval, "tqdm", bar)
    monkeypatch.setattr(retrieval, "autocast_context", amp)
    monkeypatch.setattr(agman.metrics, "_average_precisions_cpu", blocks)
    return seen


def brightness(images) -> list[float]:
    return [float(x) for x in images.float().mean(dim=(1, 2, 3)).cpu()]


def test_embed_feeds_each_entry_with_its_attribute_in_order_and_batches_and_stacks_the_embeddings(grey_cache, spy):
    vectors = torch.arange(10, dtype=torch.float32).reshape(5, 2)
    model = QueueModel(vectors)
    entries, attributes = np.array([3, 0, 2, 1, 3]), np.array([1, 0, 2, 1, 0])
    out = embed(model, grey_cache, entries, attributes, 2, torch.device("cpu"))
    assert torch.equal(out, vectors)
    assert [len(images) for images, _ in model.batches] == [2, 2, 1]
    assert torch.cat([attr for _, attr in model.batches]).tolist() == [1, 0, 2, 1, 0]
    seen = [b for images, _ in model.batches for b in brightness(images)]
    assert np.argsort(seen, kind="stable").tolist() == np.argsort(entries, kind="stable").tolist()
    assert seen[0] == seen[4]  # entry 3 twice
    assert spy["loader"] == [{"batch_size": 2, "num_workers": 0, "sampler": "SequentialSampler"}]
    assert spy["bar"] == [{"desc": "embed", "leave": False, "unit": "batch"}]
    assert spy["amp"] == [("cpu", "none")] * 3


def test_embed_passes_on_its_workers_progress_label_and_precision(grey_cache, spy):
    embed(QueueModel(torch.eye(2)), grey_cache, np.array([0, 1]), np.array([0, 0]), 4, torch.device("cpu"),
          num_workers=3, desc="embed val", amp_dtype="bfloat16")
    assert spy["loader"][0]["num_workers"] == 3
    assert spy["bar"] == [{"desc": "embed val", "leave": False, "unit": "batch"}]
    assert spy["amp"] == [("cpu", "bfloat16")]


def test_embed_sends_images_and_attributes_to_the_device_and_returns_an_empty_block_there(grey_cache, spy):
    model = QueueModel(torch.eye(2))
    embed(model, grey_cache, np.array([0, 1]), np.array([0, 1]), 2, META)
    images, attr = model.batches[0]
    assert images.device == META and attr.device == META
    empty = embed(model, grey_cache, np.array([], dtype=np.int64), np.array([], dtype=np.int64), 2, META)
    assert empty.shape == (0, 1) and empty.device == META


def split_table() -> tuple[pd.DataFrame, torch.Tensor]:
    # Test rows, in order, with the embedding the model hands out for each:
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
    vectors = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [0.0, 1.0], [0.6, 0.8], [0.8, 0.6], [0.0, 1.0]])
    return table, vectors


def test_evaluate_retrieval_embeds_the_split_and_scores_it(grey_cache, spy):
    table, vectors = split_table()
    model = QueueModel(vectors)
    out = evaluate_retrieval(model, table, grey_cache, "test", ["colour", "size"], batch_size=4, chunk_size=1,
                             device=torch.device("cpu"))
    assert out["map"] == pytest.approx(2 / 3) and out["map_macro"] == pytest.approx(3 / 4)
    assert out["map_per_attribute"] == pytest.approx({"colour": 0.5, "size": 1.0})
    assert (out["n_queries"], out["n_candidates"]) == (3, 4)
    assert [len(images) for images, _ in model.batches] == [4, 3]
    assert torch.cat([attr for _, attr in model.batches]).tolist() == [0, 0, 0, 1, 1, 1, 0]
    seen = [b for images, _ in model.batches for b in brightness(images)]
    test_entries = [1, 2, 3, 2, 0, 1, 3]
    assert np.argsort(seen, kind="stable").tolist() == np.argsort(test_entries, kind="stable").tolist()
    assert spy["blocks"] == [1, 1, 1]  # chunk_size queries at a time
    assert spy["loader"][0]["num_workers"] == 0
    assert spy["bar"] == [{"desc": "embed test", "leave": False, "unit": "batch"}]
    assert spy["amp"] == [("cpu", "none")] * 2


def test_evaluate_retrieval_passes_on_its_device_workers_and_precision(grey_cache, spy):
    table, vectors = split_table()
    model = QueueModel(vectors)
    evaluate_retrieval(model, table, grey_cache, "test", ["colour", "size"], batch_size=8, chunk_size=1024,
                       device=META, num_workers=2, amp_dtype="float16")
    assert all(images.device == META and attr.device == META for images, attr in model.batches)
    assert spy["loader"][0]["num_workers"] == 2
    assert spy["amp"] == [("meta", "float16")]


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
