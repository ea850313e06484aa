import math

import pytest
import torch

from agman.config import FixedWeights, LossConfig
from agman.losses import attribute_classification_loss, build_weighting, triplet_ranking_loss


def test_triplet_loss_hand_computed():
    a = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    p = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # cos 1, cos 0
    n = torch.tensor([[0.0, 1.0], [1.0, 0.0]])  # cos 0, cos 1
    # max(0, 0.2 + 0 - 1) = 0 ; max(0, 0.2 + 1 - 0) = 1.2 -> mean 0.6
    assert triplet_ranking_loss(a, p, n, margin=0.2).item() == pytest.approx(0.6)


def test_classification_loss_is_bce_on_one_hot_types():
    logits = torch.zeros(2, 4)
    assert attribute_classification_loss(logits, torch.tensor([0, 3])).item() == pytest.approx(math.log(2))


def test_uncertainty_weighting_starts_at_half_and_is_optimised():
    weighting = build_weighting(LossConfig(), with_cls=True)
    losses = {"cls": torch.tensor(2.0), "triplet": torch.tensor(4.0)}
    assert weighting(losses).item() == pytest.approx(0.5 * 2 + 0.5 * 4)
    assert weighting.weights() == {"cls": 0.5, "triplet": 0.5}
    opt = torch.optim.SGD(weighting.parameters(), lr=0.1)
    weighting(losses).backward()
    opt.step()
    # d/ds (0.5 e^{-s} L + 0.5 s) = 0.5 (1 - L) < 0 for L > 1, so s grows and the weight shrinks.
    assert all(w < 0.5 for w in weighting.weights().values())


def test_uncertainty_weighting_is_bounded_below():
    weighting = build_weighting(LossConfig(), with_cls=True)
    with torch.no_grad():
        weighting.log_vars.fill_(-50.0)
    losses = {"cls": torch.tensor(0.1), "triplet": torch.tensor(0.1)}
    # 0.5 e^{-s} L + 0.5 s >= 0.5 (1 + log L) for every s: the printed Eq. 9 has no such bound.
    assert weighting(losses).item() >= 2 * 0.5 * (1 + math.log(0.1)) - 1e-6


def test_fixed_weighting_and_single_term():
    fixed = build_weighting(LossConfig(weighting="fixed", fixed=FixedWeights(triplet=2.0, cls=3.0)), with_cls=True)
    assert fixed({"cls": torch.tensor(1.0), "triplet": torch.tensor(1.0)}).item() == pytest.approx(5.0)
    assert list(fixed.parameters()) == []
    single = build_weighting(LossConfig(), with_cls=False)
    assert single({"triplet": torch.tensor(0.7)}).item() == pytest.approx(0.7)


def unit_pair(cos: float) -> tuple[torch.Tensor, torch.Tensor]:
    """An anchor (1, 0) and a unit vector at cosine ``cos`` to it."""
    return torch.tensor([[1.0, 0.0]]), torch.tensor([[cos, math.sqrt(1 - cos ** 2)]])


def test_triplet_loss_ranks_the_positive_above_the_negative_by_the_margin():
    # cos(a, p) = 0.8, cos(a, n) = 0.3: max(0, 0.2 + 0.3 - 0.8) = 0; swapped, 0.2 + 0.8 - 0.3 = 0.7.
    a, p = unit_pair(0.8)
    _, n = unit_pair(0.3)
    assert triplet_ranking_loss(a, p, n, margin=0.2).item() == pytest.approx(0.0)
    assert triplet_ranking_loss(a, n, p, margin=0.2).item() == pytest.approx(0.7)
    # Inside the margin: cos(a, p) = 0.4, cos(a, n) = 0.3 gives 0.2 + 0.3 - 0.4 = 0.1.
    a, p = unit_pair(0.4)
    assert triplet_ranking_loss(a, p, n, margin=0.2).item() == pytest.approx(0.1)


def test_a_gradient_step_on_the_triplet_loss_moves_the_positive_closer_than_the_negative():
    torch.manual_seed(0)
    anchor, positive, negative = (torch.randn(8, 16, requires_grad=True) for _ in range(3))
    opt = torch.optim.SGD([anchor, positive, negative], lr=0.1)

    def gap() -> float:
        cos = torch.nn.functional.cosine_similarity
        return float((cos(anchor, positive) - cos(anchor, negative)).mean())

    before = gap()
    triplet_ranking_loss(anchor, positive, negative, margin=2.0).backward()  # every triplet active
    opt.step()
    assert gap() > before


def test_classification_loss_targets_the_triplets_own_attribute_type():
    logits = torch.tensor([[4.0, -4.0, -4.0], [-4.0, -4.0, 4.0]])  # confident in types 0 and 2
    right = attribute_classification_loss(logits, torch.tensor([0, 2])).item()
    shifted = attribute_classification_loss(logits, torch.tensor([1, 0])).item()
    # Hand value: every logit is +-4 on the right side, so each term is log(1 + e^-4).
    assert right == pytest.approx(math.log1p(math.exp(-4.0)), rel=1e-5)
    # Types 1 and 0 get two terms each of log(1 + e^4) (wrong sign) and one right: (4 log(1+e^4) + 2 log(1+e^-4)) / 6.
    assert shifted == pytest.approx((4 * math.log1p(math.exp(4.0)) + 2 * math.log1p(math.exp(-4.0))) / 6, rel=1e-5)


def test_fixed_weighting_applies_each_weight_to_its_own_loss():
    fixed = build_weighting(LossConfig(weighting="fixed", fixed=FixedWeights(triplet=2.0, cls=3.0)), with_cls=True)
    # 3 * 1 (cls) + 2 * 5 (triplet) = 13; weights swapped would give 2 * 1 + 3 * 5 = 17.
    assert fixed({"cls": torch.tensor(1.0), "triplet": torch.tensor(5.0)}).item() == pytest.approx(13.0)
    assert fixed.weights() == {"cls": 3.0, "triplet": 2.0}


def test_learned_weighting_gives_the_larger_loss_the_smaller_weight_at_its_optimum():
    # 0.5 e^{-s} L + 0.5 s is smallest at s = log L, i.e. weight 0.5 e^{-s} = 1 / (2 L).
    weighting = build_weighting(LossConfig(), with_cls=True)
    losses = {"cls": torch.tensor(0.5), "triplet": torch.tensor(4.0)}
    opt = torch.optim.SGD(weighting.parameters(), lr=0.5)
    for _ in range(500):
        opt.zero_grad()
        weighting(losses).backward()
        opt.step()
    weights = weighting.weights()
    assert weights["cls"] == pytest.approx(1 / (2 * 0.5), rel=1e-3)  # 1.0
    assert weights["triplet"] == pytest.approx(1 / (2 * 4.0), rel=1e-3)  # 0.125
    assert weighting(losses).item() == pytest.approx(0.5 * (1 + math.log(0.5)) + 0.5 * (1 + math.log(4.0)), rel=1e-4)
