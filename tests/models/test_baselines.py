import logging

import pytest
import torch
import torch.nn.functional as F

from agman.config import AGAConfig, ModelConfig
from agman.losses import attribute_classification_loss, triplet_ranking_loss
from agman.models import available_models, build_model
from agman.models import backbone as backbone_module
from agman.models.aca import AttributeGuidedChannelAttention
from agman.models.asa import AttributeGuidedSpatialAttention
from agman.models.backbone import HierarchicalFeature
from agman.models.ca import ChannelAttention
from agman.models.classification import ClassificationBranch
from agman.models.sa import SpatialAttention

N_ATTR = 4
DIM = 16
BASELINES = ("csn", "asenet_v2", "attnfashion")
ALL_MODELS = ("agman", *BASELINES)


def tiny(name: str, **overrides) -> ModelConfig:
    # ca_reduction 4: AG-MAN's CA keeps 4 hidden units at DIM 16 (see tests/test_models.py).
    settings = dict(backbone="resnet18", pretrained=False, embed_dim=DIM, aga=AGAConfig(ca_reduction=4))
    return ModelConfig(name=name, **{**settings, **overrides})


def build(name: str, **overrides):
    torch.manual_seed(0)
    return build_model(tiny(name, **overrides), N_ATTR)


def test_every_name_in_the_config_literal_is_registered():
    assert set(ALL_MODELS) == set(available_models())


@pytest.mark.parametrize("size", [(32, 32), (48, 64), (70, 45)])
@pytest.mark.parametrize("name", ALL_MODELS)
def test_shape_norm_and_finite_at_any_input_size(name, size):
    model = build(name).eval()
    out = model(torch.randn(2, 3, *size), torch.tensor([0, 3]))
    assert out.embedding.shape == (2, DIM) and out.embedding.dtype == torch.float32
    assert torch.isfinite(out.embedding).all()
    torch.testing.assert_close(out.embedding.norm(dim=1), torch.ones(2))
    assert out.attention.shape[:2] == (2, 1) and torch.isfinite(out.attention).all()
    torch.testing.assert_close(out.attention.sum(dim=(1, 2, 3)), torch.ones(2))


@pytest.mark.parametrize("name", ALL_MODELS)
def test_triplet_loss_and_penalty_reach_every_parameter(name):
    model = build(name)
    images = torch.randn(6, 3, 32, 32)
    attr = torch.tensor([0, 1, 2, 3, 0, 1])  # every attribute, so every mask row is used
    out = model(images, attr, with_logits=True)
    a, p, n = out.embedding.reshape(3, 2, DIM)
    loss = triplet_ranking_loss(a, p, n, margin=0.2)
    if out.logits is not None:
        loss = loss + attribute_classification_loss(out.logits, attr)
    if out.penalty is not None:
        assert out.penalty.shape == () and torch.isfinite(out.penalty)
        loss = loss + out.penalty
    loss.backward()
    missing = [k for k, v in model.named_parameters()
               if v.requires_grad and (v.grad is None or not torch.isfinite(v.grad).all() or v.grad.abs().sum() == 0)]
    assert not missing, f"no gradient reaches: {missing}"


@pytest.mark.parametrize("name", ALL_MODELS)
def test_every_model_starts_from_the_imagenet_weights_when_pretrained(name, monkeypatch):
    reference = backbone_module.models.resnet18(weights=None)
    state = {k: torch.full_like(v, 0.5) if v.is_floating_point() else v for k, v in reference.state_dict().items()}
    monkeypatch.setattr(backbone_module._WEIGHTS["resnet18"].__class__, "get_state_dict", lambda self, *a, **k: state)
    stem = build(name, pretrained=True).backbone.to_f2[0]  # the ResNet's conv1
    assert torch.all(stem.weight == 0.5)
    assert not torch.all(build(name).backbone.to_f2[0].weight == 0.5)  # pretrained: false keeps its random init


@pytest.mark.parametrize("name", BASELINES)
def test_baselines_have_no_classifier_and_ignore_method_switches(name):
    model = build(name)
    out = model(torch.randn(2, 3, 32, 32), torch.tensor([0, 1]), with_logits=True)
    assert out.logits is None
    off = build(name, hierarchical=False, cls_loss=False, aga=AGAConfig(asa=False, sa=False, aca=False, ca=False))
    assert [(k, v.shape) for k, v in model.state_dict().items()] == [(k, v.shape) for k, v in off.state_dict().items()]


@pytest.mark.parametrize("name", ALL_MODELS)
def test_attribute_changes_the_embedding(name):
    model = build(name).eval()
    images = torch.randn(1, 3, 32, 32).repeat(2, 1, 1, 1)
    out = model(images, torch.tensor([0, 1]))
    assert not torch.allclose(out.embedding[0], out.embedding[1])


def test_describe_logs_one_line_with_only_the_options_a_model_reads(caplog):
    with caplog.at_level(logging.INFO, logger="agman.models.registry"):
        for name in ALL_MODELS:
            build(name)
    lines = {r.getMessage().split(":")[0].removeprefix("model "): r.getMessage() for r in caplog.records}
    assert len(caplog.records) == len(ALL_MODELS) == len(lines)
    assert "hierarchical=on" in lines["agman"] and "ASA=on" in lines["agman"]
    for name in BASELINES:
        assert f"embed_dim={DIM}" in lines[name]
        assert not any(key in lines[name] for key in ("hierarchical", "cls_loss", "ASA", "SA=", "ACA", "CA="))


def test_agman_output_has_no_penalty():
    out = build("agman")(torch.randn(2, 3, 32, 32), torch.tensor([0, 1]))
    assert out.penalty is None


# CSN (Veit et al. 2017): one general embedding, a learned mask per condition, no attention.

def test_csn_embedding_is_the_general_embedding_times_the_relu_mask():
    model = build("csn").eval()
    images, attr = torch.randn(3, 3, 32, 32), torch.tensor([0, 2, 3])
    out = model(images, attr)
    general, _ = model.general_embedding(images)  # (3, D)
    expected = F.normalize(general * torch.relu(model.masks.weight[attr]), dim=1)
    torch.testing.assert_close(out.embedding, expected)
    assert (model.masks.weight < 0).any(), "N(0.9, 0.7) should leave some dimensions masked out"


def test_csn_penalty_is_the_weighted_rms_embedding_norm_plus_the_mean_l1_of_the_masks():
    model = build("csn").eval()
    images, attr = torch.randn(3, 3, 32, 32), torch.tensor([0, 2, 3])  # a batch of 3: means differ from sums
    out = model(images, attr)
    general, _ = model.general_embedding(images)  # (3, D)
    mask = torch.relu(model.masks.weight[attr])  # (3, D)
    # CSN's public defaults: 5e-3 x ||e|| (root mean square over the batch), 5e-4 x ||m||_1 (mean over the batch)
    expected = 5e-3 * general.pow(2).sum(dim=1).mean().sqrt() + 5e-4 * mask.sum(dim=1).mean()
    torch.testing.assert_close(out.penalty, expected)


def test_csn_masks_start_from_a_normal_of_mean_0_9_and_std_0_7():
    masks = build("csn", embed_dim=512).masks.weight.detach()  # 4 x 512 draws
    assert abs(masks.mean().item() - 0.9) < 4 * 0.7 / masks.numel() ** 0.5  # within 4 standard errors
    assert abs(masks.std().item() - 0.7) < 0.05


def test_csn_has_no_spatial_attention():
    model = build("csn").eval()
    out = model(torch.randn(2, 3, 48, 64), torch.tensor([0, 1]))
    torch.testing.assert_close(out.attention, torch.full_like(out.attention, 1 / out.attention[0].numel()))
    assert not any(isinstance(m, (AttributeGuidedSpatialAttention, SpatialAttention)) for m in model.modules())


def test_csn_penalty_is_positive_and_reaches_the_masks():
    model = build("csn")
    out = model(torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3]))
    assert out.penalty > 0
    out.penalty.backward()
    grad = model.masks.weight.grad
    active = model.masks.weight > 0
    # L1 of ReLU(beta): d/dbeta = weight / batch wherever the mask is open, 0 where it is closed.
    assert torch.all(grad[active] > 0) and torch.all(grad[~active] == 0)
    assert model.embed_fc.weight.grad.abs().sum() > 0


# ASENet_V2 (Ma et al. 2020): ASA then ACA on F3; none of what AG-MAN adds.

def test_asenet_v2_has_asa_and_aca_but_no_sa_ca_hierarchy_or_classifier():
    model = build("asenet_v2")
    kinds = [type(m) for m in model.modules()]
    assert kinds.count(AttributeGuidedSpatialAttention) == 1 and kinds.count(AttributeGuidedChannelAttention) == 1
    for absent in (SpatialAttention, ChannelAttention, HierarchicalFeature, ClassificationBranch):
        assert absent not in kinds, absent.__name__
    assert model.reduce.in_channels == model.backbone.f3_channels  # F3 alone, not concat(F3, F2,3)


def test_asenet_v2_equals_agman_with_its_additions_switched_off():
    agman = build("agman", hierarchical=False, cls_loss=False, aga=AGAConfig(sa=False, ca=False)).eval()
    asen = build("asenet_v2").eval()
    state = {k.removeprefix("aga."): v for k, v in agman.state_dict().items()}
    asen.load_state_dict(state)  # strict: the same parameters, under shorter names
    images, attr = torch.randn(2, 3, 32, 32), torch.tensor([1, 2])
    torch.testing.assert_close(asen(images, attr).embedding, agman(images, attr).embedding)


# AttnFashion (Wan et al. 2022): spatial and channel attention in parallel, then fused.

def test_attnfashion_channel_branch_does_not_depend_on_the_spatial_branch():
    model = build("attnfashion").eval()
    captured = []
    model.aca.register_forward_hook(lambda module, args, output: captured.append(output.detach().clone()))
    images, attr = torch.randn(2, 3, 32, 32), torch.tensor([0, 3])
    before = model(images, attr)
    with torch.no_grad():
        for p in model.asa.parameters():
            p.add_(torch.randn_like(p))
    after = model(images, attr)
    torch.testing.assert_close(captured[1], captured[0])  # channel branch: unchanged
    assert not torch.allclose(after.attention, before.attention)
    assert not torch.allclose(after.embedding, before.embedding)  # the fused embedding sees the change


@pytest.mark.parametrize("name", ALL_MODELS)
def test_encode_then_condition_is_the_forwards_embedding(name):
    """The evaluation runs the attribute-independent part once per image and conditions it per
    attribute: the embedding must be the forward's, for every attribute."""
    model = build(name).eval()
    images = torch.randn(3, 3, 48, 40)
    with torch.no_grad():
        features = model.encode(images)
        for a in range(N_ATTR):
            attr = torch.full((3,), a)
            torch.testing.assert_close(model.condition(features, attr), model(images, attr).embedding,
                                       rtol=1e-5, atol=1e-6)
        shared = model.condition(features[[0, 0, 2]], torch.tensor([1, 3, 0]))  # one image under two attributes
        rows = torch.cat([model(images[[i]], torch.tensor([a])).embedding for i, a in ((0, 1), (0, 3), (2, 0))])
        torch.testing.assert_close(shared, rows, rtol=1e-5, atol=1e-6)
