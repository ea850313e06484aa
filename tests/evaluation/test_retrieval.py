"""Scoring a retrieval split: per attribute type, queries against that type's candidates only;
overall MAP weighted by queries (the number the paper prints), macro MAP beside it."""

import math

import pandas as pd
import pytest
import torch

from agman.evaluation.retrieval import score_split

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
