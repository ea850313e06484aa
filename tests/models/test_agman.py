import dataclasses
import itertools
import urllib.error

import pytest
import torch

from agman.config import AGAConfig, LossConfig, ModelConfig
from agman.losses import attribute_classification_loss, build_weighting, triplet_ranking_loss
from agman.models import available_models, build_model
from agman.models import backbone as backbone_module

N_ATTR = 4
SWITCHES = ("hierarchical", "cls_loss", "asa", "sa", "aca", "ca")


def tiny(**switches) -> ModelConfig:
    # ca_reduction 4 keeps 8 hidden units at embed_dim 32: with 2, both ReLUs can be dead for
    # a 6-image batch and the test would blame CA for a property of the random draw.
    aga = AGAConfig(ca_reduction=4, **{k: v for k, v in switches.items() if k in ("asa", "sa", "aca", "ca")})
    top = {k: v for k, v in switches.items() if k in ("hierarchical", "cls_loss")}
    return ModelConfig(backbone="resnet18", pretrained=False, embed_dim=32, aga=aga, **top)


COMBOS = [dict(zip(SWITCHES, bits, strict=True)) for bits in itertools.product((True, False), repeat=len(SWITCHES))]


@pytest.mark.slow
@pytest.mark.parametrize("switches", COMBOS, ids=lambda s: "-".join(k for k, v in s.items() if v) or "none")
def test_every_switch_combination_trains(switches):
    torch.manual_seed(0)
    cfg = tiny(**switches)
    model = build_model(cfg, N_ATTR)
    weighting = build_weighting(LossConfig(), with_cls=cfg.cls_loss)
    images = torch.randn(6, 3, 32, 32)
    attr = torch.tensor([0, 1, 2, 3, 0, 1])
    out = model(images, attr, with_logits=True)
    assert out.embedding.shape == (6, 32)
    assert torch.isfinite(out.embedding).all()
    torch.testing.assert_close(out.embedding.norm(dim=1), torch.ones(6))
    assert (out.logits is not None) == cfg.cls_loss
    a, p, n = out.embedding.reshape(3, 2, 32)
    losses = {"triplet": triplet_ranking_loss(a, p, n, margin=0.2)}
    if out.logits is not None:
        assert out.logits.shape == (6, N_ATTR)
        losses["cls"] = attribute_classification_loss(out.logits, attr)
    loss = weighting(losses)
    assert torch.isfinite(loss)
    loss.backward()
    missing = [name for name, p in [*model.named_parameters(), *weighting.named_parameters()]
               if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all() or p.grad.abs().sum() == 0)]
    assert not missing, f"no gradient reaches: {missing}"


@pytest.mark.parametrize("switch", SWITCHES)
def test_each_switch_changes_the_network(switch):
    full = {n for n, _ in build_model(tiny(), N_ATTR).named_parameters()}
    ablated = {n for n, _ in build_model(tiny(**{switch: False}), N_ATTR).named_parameters()}
    assert ablated < full, f"switching off {switch} removes no parameters"


def test_sa_kernel_and_ca_reduction_are_honoured():
    model = build_model(dataclasses.replace(tiny(), aga=AGAConfig(sa_kernel=7, ca_reduction=4)), N_ATTR)
    assert model.aga.sa.conv.kernel_size == (7, 7)
    assert model.aga.ca.down.out_features == 32 // 4
    assert build_model(tiny(), N_ATTR).aga.sa.conv.kernel_size == (1, 1)


@pytest.mark.parametrize("size", [(32, 32), (48, 64), (70, 45)])
def test_no_hard_coded_spatial_size(size):
    model = build_model(tiny(), N_ATTR).eval()
    out = model(torch.randn(2, 3, *size), torch.tensor([0, 3]), with_logits=True)
    assert out.embedding.shape == (2, 32) and out.logits.shape == (2, N_ATTR)


def test_the_classification_logits_are_computed_only_when_asked_for():
    model = build_model(tiny(), N_ATTR).eval()  # cls_loss on: the branch exists
    images, attr = torch.randn(2, 3, 32, 32), torch.tensor([0, 3])
    assert model(images, attr).logits is None  # evaluation and retrieval never pay for the branch
    assert model(images, attr, with_logits=True).logits.shape == (2, N_ATTR)


def test_asa_attention_is_a_distribution_over_positions():
    model = build_model(tiny(), N_ATTR).eval()
    out = model(torch.randn(2, 3, 64, 64), torch.tensor([0, 3]))
    torch.testing.assert_close(out.attention.sum(dim=(1, 2, 3)), torch.ones(2))


def test_attribute_changes_the_embedding():
    model = build_model(tiny(), N_ATTR).eval()
    images = torch.randn(1, 3, 32, 32).repeat(2, 1, 1, 1)
    out = model(images, torch.tensor([0, 1]))
    assert not torch.allclose(out.embedding[0], out.embedding[1])


def test_registry_lists_agman_and_rejects_unknown():
    assert "agman" in available_models()
    with pytest.raises(KeyError, match="model.name"):
        build_model(dataclasses.replace(tiny(), name="nope"), N_ATTR)


def test_missing_imagenet_weights_stop_naming_the_key_the_file_and_the_way_out(monkeypatch, tmp_path):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(backbone_module._WEIGHTS["resnet50"].__class__, "get_state_dict", offline)
    with pytest.raises(backbone_module.MissingWeightsError) as err:
        build_model(dataclasses.replace(tiny(), backbone="resnet50", pretrained=True), N_ATTR)
    message = str(err.value)
    assert "model.pretrained" in message and "resnet50-0676ba61.pth" in message
    assert str(tmp_path / "hub" / "checkpoints") in message and "model.pretrained: false" in message
    assert "\n" not in message


def test_imagenet_weights_planted_in_torch_home_are_loaded_without_a_download(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    reference = backbone_module.models.resnet18(weights=None)
    state = {k: torch.full_like(v, 0.25) if v.is_floating_point() else v for k, v in reference.state_dict().items()}
    path = backbone_module.weights_file("resnet18")
    assert path.parent == tmp_path / "hub" / "checkpoints" and path.name == "resnet18-f37072fd.pth"
    path.parent.mkdir(parents=True)
    torch.save(state, path)

    def no_network(*args, **kwargs):
        raise AssertionError("the planted file must be read, not downloaded")

    monkeypatch.setattr("torch.hub.download_url_to_file", no_network)
    model = build_model(dataclasses.replace(tiny(), pretrained=True), N_ATTR)
    assert torch.all(model.backbone.to_f2[0].weight == 0.25)


def test_pretrained_weights_are_loaded_when_available(monkeypatch):
    reference = backbone_module.models.resnet18(weights=None)
    state = {k: torch.full_like(v, 0.5) if v.is_floating_point() else v for k, v in reference.state_dict().items()}
    monkeypatch.setattr(backbone_module._WEIGHTS["resnet18"].__class__, "get_state_dict",
                        lambda self, *a, **k: state)
    model = build_model(dataclasses.replace(tiny(), pretrained=True), N_ATTR)
    assert torch.all(model.backbone.to_f2[0].weight == 0.5)
