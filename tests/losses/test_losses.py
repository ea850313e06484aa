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
