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


# Edge cases of the inputs, and where the work happens.

def test_no_queries_give_no_aps_and_a_map_of_zero_and_no_candidates_give_zero_aps():
    cand, labels = one_hot_embeddings([0.9, 0.1]), np.array([0, 1])
    assert average_precisions(np.zeros((0, 2)), np.zeros(0, dtype=int), cand, labels).shape == (0,)
    assert mean_average_precision(np.zeros((0, 2)), np.zeros(0, dtype=int), cand, labels) == 0.0
    np.testing.assert_array_equal(average_precisions(np.eye(2)[:3], [0, 1], np.zeros((0, 2)), []), [0.0, 0.0])


def test_a_single_relevant_candidate_ranks_first_with_ap_one():
    assert average_precisions(np.array([[1.0, 0.0]]), [4], np.array([[0.6, 0.8]]), [4]).tolist() == [1.0]


def test_a_one_dimensional_query_and_a_label_count_mismatch_are_refused_by_name():
    with pytest.raises(ValueError, match=r"^embeddings must be \(Q, D\) and \(N, D\), got \(3,\) and \(4, 3\)$"):
        average_precisions(np.zeros(3), [0], np.zeros((4, 3)), [0, 0, 1, 1])
    with pytest.raises(ValueError, match="^one label per embedding is required$"):
        average_precisions(np.zeros((2, 3)), [0, 1], np.zeros((4, 3)), [0, 0, 1])


def test_embeddings_of_any_layout_and_tensors_that_require_grad_are_accepted():
    cand = one_hot_embeddings([0.9, 0.8, 0.7, 0.6, 0.5])
    labels = np.array([1, 0, 1, 2, 1])
    expected = (1 + 2 / 3 + 3 / 5) / 3
    # A reversed view (negative strides) of the candidates and their labels: the same ranking reversed.
    flipped = average_precisions(np.array([[-1.0, 0.0]]), [1], cand[::-1], labels[::-1])
    assert flipped[0] == pytest.approx(expected, abs=1e-12)
    q = torch.tensor([[1.0, 0.0]], requires_grad=True)
    assert average_precisions(q, [1], torch.from_numpy(cand).requires_grad_(), labels)[0] == pytest.approx(expected)
    a = torch.tensor([[1.0, 0.0]], dtype=torch.float64, requires_grad=True)
    out = triplet_relation(a, torch.tensor([[0.8, 0.6]]), torch.tensor([[0.6, 0.8]], dtype=torch.float64))
    assert out == {"accuracy": 1.0, "average_loss": pytest.approx(0.0)}


def test_candidates_in_another_dtype_are_scored_in_the_queries_dtype():
    cand = one_hot_embeddings([0.9, 0.8, 0.7, 0.6, 0.5])  # float64
    ap = average_precisions(torch.tensor([[1.0, 0.0]], dtype=torch.float32), [1], cand, [1, 0, 1, 2, 1])
    assert ap[0] == pytest.approx((1 + 2 / 3 + 3 / 5) / 3, abs=1e-7)


def test_queries_are_ranked_chunk_size_at_a_time_1024_unless_told(monkeypatch):
    import agman.metrics

    blocks = []
    rank = agman.metrics._average_precisions_cpu
    monkeypatch.setattr(agman.metrics, "_average_precisions_cpu", lambda s, r: blocks.append(len(s)) or rank(s, r))
    q = np.tile([[1.0, 0.0]], (1030, 1))
    cand, labels = one_hot_embeddings([0.9, 0.1]), np.array([0, 1])
    average_precisions(q, np.zeros(1030, dtype=int), cand, labels)
    assert blocks == [1024, 6]
    blocks.clear()
    assert mean_average_precision(q, np.zeros(1030, dtype=int), cand, labels) == 1.0
    assert blocks == [1024, 6]
    blocks.clear()
    mean_average_precision(q, np.zeros(1030, dtype=int), cand, labels, chunk_size=400)
    assert blocks == [400, 400, 230]


def test_the_stable_sort_ranking_builds_its_ranks_on_the_similarities_device():
    from agman.metrics import _average_precisions_sorted

    # A default device other than the similarities' one: every tensor must follow the similarities.
    sim, rel = torch.tensor([[0.2, 0.4, 0.2, 0.1]]), torch.tensor([[False, False, True, True]])
    with torch.device("meta"):
        out = _average_precisions_sorted(sim, rel)
    assert out.device.type == "cpu" and out.dtype == torch.float64
    assert out.tolist() == pytest.approx([(1 / 3 + 2 / 4) / 2])


def test_the_stable_sort_ranking_against_a_float64_loop_with_ties():
    from agman.metrics import _average_precisions_sorted

    rng = np.random.default_rng(4)
    sim = rng.choice(np.array([-0.5, 0.0, 0.25, 0.7]), size=(30, 25))  # ties everywhere
    rel = rng.random((30, 25)) < 0.3
    rel[0] = False
    expected = []
    for s, r in zip(sim, rel, strict=True):
        order = np.argsort(-s, kind="stable")
        hits = np.cumsum(r[order])
        expected.append(float(np.sum(r[order] * hits / np.arange(1, 26)) / max(r.sum(), 1)))
    for dtype in (torch.float64, torch.float32):
        got = _average_precisions_sorted(torch.from_numpy(sim).to(dtype), torch.from_numpy(rel))
        assert got.dtype == torch.float64
        np.testing.assert_allclose(got.numpy(), expected, atol=1e-15, rtol=0)
    # Hand-computed: 0.4 first, then the tie 0.2 (c0, c2) in candidate order, then 0.1.
    got = _average_precisions_sorted(torch.tensor([[0.2, 0.4, 0.2, 0.1]]), torch.tensor([[False, False, True, True]]))
    assert got.tolist() == pytest.approx([(1 / 3 + 2 / 4) / 2])


def test_the_key_sort_alone_ranks_rows_without_ties(monkeypatch):
    import agman.metrics
    from agman.metrics import _average_precisions_cpu

    fallback = []
    stable = agman.metrics._average_precisions_sorted
    monkeypatch.setattr(agman.metrics, "_average_precisions_sorted",
                        lambda s, r: fallback.append(len(s)) or stable(s, r))
    adjacent = np.nextafter(0.5, 1.0)  # the next float above 0.5: distinct, though only by its last bit
    sim = torch.tensor([[0.5, adjacent, -0.3, 0.1], [0.9, 0.5, 0.5, 0.1]], dtype=torch.float64)
    rel = torch.tensor([[True, False, False, True], [False, True, False, False]])
    ap = _average_precisions_cpu(sim, rel)
    # Row 0: adjacent, 0.5 (hit), 0.1 (hit), -0.3: (1/2 + 2/3) / 2. Row 1: 0.9, then the tie in
    # candidate order, c1 (hit) second: 1/2; only row 1 takes the stable sort.
    assert ap.tolist() == pytest.approx([(1 / 2 + 2 / 3) / 2, 1 / 2], abs=1e-15)
    assert fallback == [1]
    fallback.clear()
    agman.metrics.average_precisions(np.array([[1.0, 0.0]]), [1], one_hot_embeddings([0.9, 0.8, 0.7]), [0, 1, 1])
    assert fallback == []


@pytest.mark.parametrize("row, rel, expected", [
    ([0.0, -0.5, 0.3], [True, False, False], 1 / 2),  # an exact 0 ranks above a negative similarity
    ([-0.0, 0.0, 0.3], [False, True, False], 1 / 3),  # -0.0 and +0.0 tie: candidate order
    ([0.5, -1.5, -1.2], [False, False, True], 1 / 2),  # below -1 (|sim| < 2 keeps the key sort)
    ([1.9, -1.95, 0.2], [False, True, False], 1 / 3),
    ([2.0, -2.0, 0.5, 1.0], [False, True, False, False], 1 / 4),  # |sim| = 2: the stable sort
    ([2.5, -2.9, 0.5, 2.4], [False, True, False, True], (1 / 2 + 2 / 4) / 2),
])
def test_the_key_sort_is_exact_at_zero_signed_zeros_and_up_to_magnitude_two(row, rel, expected):
    from agman.metrics import _average_precisions_cpu

    fast, stable = _both_paths(torch.tensor([row], dtype=torch.float64), torch.tensor([rel]))
    assert fast.tolist() == pytest.approx([expected], abs=1e-15)
    assert stable.tolist() == pytest.approx([expected], abs=1e-15)
    assert _average_precisions_cpu(torch.tensor([row], dtype=torch.float32), torch.tensor([rel])).tolist() == \
        pytest.approx([expected], abs=1e-15)


def test_random_ranking_ap_edge_cases():
    # N = R = 2: both hits on top, AP 1 whatever the order.
    np.testing.assert_allclose(random_ranking_ap([2, 1], [2, 4]), [1.0, (1 + 1 / 2 + 1 / 3 + 1 / 4) / 4],
                               rtol=0, atol=1e-15)
    assert random_ranking_ap([], []).shape == (0,)
    # Counts given as whole floats (e.g. a pandas column) are read as integers.
    np.testing.assert_array_equal(random_ranking_ap(np.array([1.0, 2.0]), 3.0), random_ranking_ap([1, 2], 3))
    for r, n in ((-1, 3), (4, 3)):
        with pytest.raises(ValueError, match="^need 0 <= n_relevant <= n_candidates$"):
            random_ranking_ap(r, n)


def test_triplet_relation_default_margin_and_a_given_margin():
    from agman.metrics import triplet_relation_per_item

    a, close, far = np.array([[1.0, 0.0]]), np.array([[0.8, 0.6]]), np.array([[0.6, 0.8]])  # s 0.8 and 0.6
    assert triplet_relation(a, close, far)["average_loss"] == pytest.approx(0.0)  # 0.2 + 0.6 - 0.8
    assert triplet_relation(a, close, far, margin=0.5)["average_loss"] == pytest.approx(0.3)
    assert triplet_relation_per_item(a, far, close)[1].tolist() == pytest.approx([0.4])  # swapped: 0.2 + 0.8 - 0.6
    with pytest.raises(ValueError, match="^no triplets$"):
        triplet_relation_per_item(np.zeros((0, 2)), np.zeros((0, 2)), np.zeros((0, 2)))


def test_triplet_relation_takes_bfloat16_embeddings_and_scores_them_in_float64():
    a = torch.tensor([[1.0, 0.0]], dtype=torch.bfloat16)
    close, far = torch.tensor([[0.75, 0.5]], dtype=torch.bfloat16), torch.tensor([[0.5, 0.75]], dtype=torch.bfloat16)
    assert triplet_relation(a, close, far, margin=0.5) == {"accuracy": 1.0, "average_loss": 0.25}  # 0.5 + 0.5 - 0.75


def test_half_precision_embeddings_are_scored_in_float32_as_their_float32_copies():
    rng = np.random.default_rng(3)
    q = torch.from_numpy(rng.normal(size=(6, 8))).to(torch.bfloat16)
    c = torch.from_numpy(rng.normal(size=(20, 8))).to(torch.bfloat16)
    ql, cl = torch.arange(6) % 3, torch.arange(20) % 3
    for dtype in (torch.bfloat16, torch.float16):
        got = average_precisions(q.to(dtype), ql, c.to(dtype), cl)
        assert np.array_equal(got, average_precisions(q.to(dtype).float(), ql, c.to(dtype).float(), cl))


@pytest.mark.parametrize("n", [60, 5000])  # within and beyond a GPU's shared-memory sort of one row
def test_the_float32_key_order_is_the_stable_sorts_order(n):
    from agman.metrics import _rank_order

    rng = np.random.default_rng(5)
    values = np.array([-1.0, -0.5, -0.0, 0.0, 1e-30, -1e-30, 0.25, 1.0], dtype=np.float32)
    sim = torch.from_numpy(np.concatenate([rng.choice(values, size=(6, n)),  # ties and signed zeros
                                           rng.uniform(-1, 1, (6, n)).astype(np.float32),
                                           np.full((1, n), 0.5, dtype=np.float32)]))  # one row all tied
    expected = torch.sort(sim, dim=1, descending=True, stable=True).indices
    assert torch.equal(_rank_order(sim), expected)
    assert torch.equal(_rank_order(sim.double()), expected)
