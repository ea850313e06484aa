import numpy as np
import pytest
import torch

from agman.metrics import average_precisions, mean_average_precision


def one_hot_embeddings(scores):
    """Candidates on a 2-D circle so that the query [1, 0] sees the given similarities."""
    scores = np.asarray(scores, dtype=np.float64)
    return np.stack([scores, np.sqrt(1 - scores**2)], axis=1)


def test_hand_computed_average_precision():
    # Ranking by similarity: c0 (rel), c1 (not), c2 (rel), c3 (not), c4 (rel).
    # AP = (1/3) * (1/1 + 2/3 + 3/5) = 0.7555...
    cand = one_hot_embeddings([0.9, 0.8, 0.7, 0.6, 0.5])
    labels = np.array([1, 0, 1, 2, 1])
    ap = average_precisions(np.array([[1.0, 0.0]]), np.array([1]), cand, labels)
    assert ap[0] == pytest.approx((1 + 2 / 3 + 3 / 5) / 3, abs=1e-12)


def test_map_is_query_weighted_and_no_relevant_scores_zero():
    cand = one_hot_embeddings([0.9, 0.1])
    labels = np.array([0, 1])
    queries = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    # q0 label 0: AP 1. q1 label 1: relevant at rank 2 -> 1/2. q2 label 7: none relevant -> 0.
    value = mean_average_precision(queries, np.array([0, 1, 7]), cand, labels)
    assert value == pytest.approx((1 + 0.5 + 0) / 3, abs=1e-12)


def test_ties_keep_candidate_order():
    cand = one_hot_embeddings([0.5, 0.5])
    # Equal similarity: c0 ranks first. Relevant c1 at rank 2 -> AP 0.5; relevant c0 -> 1.
    q = np.array([[1.0, 0.0]])
    assert average_precisions(q, [1], cand, np.array([0, 1]))[0] == pytest.approx(0.5)
    assert average_precisions(q, [0], cand, np.array([0, 1]))[0] == pytest.approx(1.0)


def naive_average_precision(q, ql, c, cl):
    out = []
    for i in range(len(q)):
        sims = c @ q[i]
        order = np.argsort(-sims, kind="stable")
        hits, total = 0, 0.0
        for rank, j in enumerate(order, start=1):
            if cl[j] == ql[i]:
                hits += 1
                total += hits / rank
        n_rel = int((cl == ql[i]).sum())
        out.append(total / n_rel if n_rel else 0.0)
    return np.array(out)


@pytest.mark.parametrize("chunk", [1, 7, 1024])
def test_vectorised_equals_naive_loop(chunk):
    rng = np.random.default_rng(0)
    q = rng.normal(size=(37, 16)).astype(np.float32)
    c = rng.normal(size=(211, 16)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    ql, cl = rng.integers(0, 5, 37), rng.integers(0, 5, 211)
    expected = naive_average_precision(q, ql, c, cl)
    got = average_precisions(q, ql, c, cl, chunk_size=chunk)
    np.testing.assert_allclose(got, expected, atol=1e-9, rtol=0)
    tensor_map = mean_average_precision(torch.from_numpy(q), torch.from_numpy(ql), torch.from_numpy(c),
                                        torch.from_numpy(cl), chunk_size=chunk)
    assert tensor_map == pytest.approx(expected.mean(), abs=1e-9)


def test_shape_errors():
    with pytest.raises(ValueError, match="embeddings"):
        mean_average_precision(np.zeros((2, 3)), [0, 1], np.zeros((4, 2)), [0, 0, 1, 1])
    with pytest.raises(ValueError, match="one label"):
        mean_average_precision(np.zeros((2, 3)), [0], np.zeros((4, 3)), [0, 0, 1, 1])


def test_triplet_relation_hand_computed():
    from agman.metrics import triplet_relation

    a = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    close = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])  # s = 1.0, 0.6, 0.0
    far = np.array([[0.0, 1.0], [0.6, 0.8], [0.8, 0.6]])  # s = 0.0, 0.6, 0.8
    out = triplet_relation(a, close, far, margin=0.2)
    # correct: t0 only (t1 is a tie, which counts as wrong) -> 1/3
    # losses: max(0, .2 + 0 - 1) = 0 ; .2 + .6 - .6 = .2 ; .2 + .8 - 0 = 1.0 -> mean 0.4
    assert out["accuracy"] == pytest.approx(1 / 3)
    assert out["average_loss"] == pytest.approx(0.4)
    with pytest.raises(ValueError, match="alike"):
        triplet_relation(a, close[:2], far)
