import numpy as np
import pytest
import torch

from agman.metrics import average_precisions, mean_average_precision, random_ranking_ap, triplet_relation


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


# The CPU path sorts packed int64 keys (similarity bits + relevance bit) instead of doing a
# stable sort with indices; it must give the stable sort's values on any similarity matrix.
def _both_paths(sim, rel):
    from agman.metrics import _average_precisions_cpu, _average_precisions_sorted

    sim, rel = torch.as_tensor(sim), torch.as_tensor(rel)
    return _average_precisions_cpu(sim, rel), _average_precisions_sorted(sim, rel).numpy()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_cpu_key_sort_equals_stable_sort(dtype):
    rng = np.random.default_rng(1)
    sim = torch.from_numpy(rng.uniform(-1, 1, (50, 300))).to(dtype)
    rel = torch.from_numpy(rng.random((50, 300)) < 0.2)
    rel[3] = False  # a query without relevant candidates scores 0
    fast, stable = _both_paths(sim, rel)
    assert fast[3] == 0.0
    np.testing.assert_allclose(fast, stable, atol=1e-12, rtol=0)


def test_cpu_key_sort_ties_signed_zeros_and_range():
    rng = np.random.default_rng(2)
    # Few distinct values: many ties with mixed relevance, which must keep candidate order;
    # -0.0 and +0.0 are equal similarities and tie as well.
    sim = rng.choice(np.array([-1.0, -0.5, -0.0, 0.0, 0.25, 1.0]), size=(40, 60))
    rel = rng.random((40, 60)) < 0.3
    sim[0] = 0.5  # one row: all tied
    sim[1] = rng.uniform(-1, 1, 60)  # one row without ties among the tied ones
    fast, stable = _both_paths(sim, rel)
    np.testing.assert_allclose(fast, stable, atol=1e-12, rtol=0)
    # |sim| >= 2 (embeddings not normalised) and NaN fall back to the stable sort.
    for big in (rng.normal(scale=10, size=(5, 30)), np.where(np.eye(5, 30) > 0, np.nan, 0.3)):
        fast, stable = _both_paths(big, rng.random((5, 30)) < 0.5)
        np.testing.assert_allclose(fast, stable, atol=1e-12, rtol=0)


def test_ties_across_duplicate_candidates_match_naive_loop():
    rng = np.random.default_rng(3)
    # Coordinates in {-1, 0, 1}/4: every dot product is exact whatever the summation order, so
    # duplicated images tie exactly on any BLAS (and |sim| <= 0.5 keeps the key-sort path).
    base = rng.integers(-1, 2, size=(20, 8)) / 4
    cand = base[rng.integers(0, 20, 120)]  # duplicated images: exactly equal similarities
    cl = rng.integers(0, 3, 120)
    q, ql = base[:6], rng.integers(0, 3, 6)
    np.testing.assert_allclose(average_precisions(q, ql, cand, cl), naive_average_precision(q, ql, cand, cl),
                               atol=1e-12, rtol=0)


def test_random_ranking_ap_hand_computed():
    # N=2, R=1: the hit is first (AP 1) or second (AP 1/2), each half the time.
    # N=3, R=2: hits at {1,2}: 1; {1,3}: (1 + 2/3)/2 = 5/6; {2,3}: (1/2 + 2/3)/2 = 7/12 -> mean 29/36.
    np.testing.assert_allclose(random_ranking_ap([1, 2, 0, 3, 1], [2, 3, 3, 3, 1]),
                               [0.75, 29 / 36, 0.0, 1.0, 1.0], rtol=0, atol=1e-15)
    with pytest.raises(ValueError):
        random_ranking_ap(4, 3)


def test_random_ranking_ap_matches_shuffled_rankings():
    rng = np.random.default_rng(0)
    n, r = 12, 5
    labels = np.zeros(n, dtype=int)
    labels[:r] = 1
    cand = np.eye(n)
    # Random rankings: a query whose similarity to the candidates is a random permutation.
    q = np.stack([rng.permutation(np.linspace(0.1, 1.0, n)) for _ in range(20_000)])
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    ap = average_precisions(q, np.ones(len(q), dtype=int), cand, labels)
    assert ap.mean() == pytest.approx(float(random_ranking_ap(r, n)), abs=3e-3)


def test_score_split_reports_the_chance_level_of_its_queries():
    import pandas as pd
    import torch

    from agman.evaluation.retrieval import score_split

    # Type 0: query value 1 against candidates 1, 0, 1 (R=2, N=3); type 1: value 0 against 0, 1 (R=1, N=2).
    table = pd.DataFrame({"role": ["query", "candidate", "candidate", "candidate", "query", "candidate", "candidate"],
                          "attribute_index": [0, 0, 0, 0, 1, 1, 1], "value": [1, 1, 0, 1, 0, 0, 1]})
    emb = torch.nn.functional.normalize(torch.randn(len(table), 4, generator=torch.Generator().manual_seed(0)), dim=1)
    out = score_split(emb, table, ["a", "b"])
    assert out["map_chance"] == pytest.approx((29 / 36 + 0.75) / 2, abs=1e-15)
    np.testing.assert_allclose(out["per_item"]["chance_ap"], [29 / 36, 0.75], atol=1e-15)


def clustered(n: int, d: int = 64, spread: float = 0.02, seed: int = 0) -> torch.Tensor:
    """L2-normalised embeddings close to one direction: cosine similarities of about 0.9-1, as
    trained embeddings of one attribute type cluster."""
    g = torch.Generator().manual_seed(seed)
    centre = torch.randn(d, generator=g, dtype=torch.float64)
    emb = centre + spread * torch.randn(n, d, generator=g, dtype=torch.float64) * centre.norm()
    return emb / emb.norm(dim=1, keepdim=True)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_scores_are_exact_inside_a_bf16_autocast_region(dtype):
    queries, candidates = clustered(60, seed=1).to(dtype), clustered(240, seed=2).to(dtype)
    ql, cl = torch.arange(60) % 5, torch.arange(240) % 5
    reference = average_precisions(queries.double(), ql, candidates.double(), cl)
    outside = average_precisions(queries, ql, candidates, cl)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = average_precisions(queries, ql, candidates, cl)
        map_inside = mean_average_precision(queries, ql, candidates, cl)
        relation = triplet_relation(queries[:40], candidates[:40], candidates[40:80])
    np.testing.assert_array_equal(inside, outside)
    if dtype == torch.float64:
        np.testing.assert_array_equal(inside, reference)
    assert map_inside == pytest.approx(float(reference.mean()), abs=1e-6)
    assert relation == triplet_relation(queries[:40].double(), candidates[:40].double(), candidates[40:80].double())
    # The similarities rounded to bf16 (what autocast did before) rank differently: the test can fail.
    rounded = average_precisions(queries.bfloat16().float(), ql, candidates.bfloat16().float(), cl)
    assert not np.array_equal(rounded, reference)
