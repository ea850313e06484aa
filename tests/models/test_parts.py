"""The model parts one at a time, on hand-set weights: the backbone's stem, the hierarchical
feature, the classification branch's width, spatial attention, and the registry's bookkeeping."""

import dataclasses

import pytest
import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from agman.config import AGAConfig, ModelConfig
from agman.models import registry
from agman.models.aca import AttributeGuidedChannelAttention
from agman.models.asa import AttributeGuidedSpatialAttention, UniformSpatialWeights
from agman.models.attribute_embedding import AttributeEmbedding
from agman.models.backbone import (
    HierarchicalFeature,
    MultiLevelBackbone,
    SingleLevelFeature,
    _out_channels,
    load_resnet,
)
from agman.models.ca import ChannelAttention
from agman.models.classification import ClassificationBranch
from agman.models.sa import SpatialAttention


def test_the_backbone_returns_blocks_2_and_3_of_the_resnet_with_its_whole_stem():
    torch.manual_seed(0)
    net = ResNet(BasicBlock, [1, 1, 1, 1]).eval()  # ResNet-18's widths, one block per stage
    with torch.no_grad():
        net.bn1.weight.fill_(2.0)
        net.bn1.bias.fill_(-0.3)  # so that neither the stem's BatchNorm nor its ReLU is close to identity
    backbone = MultiLevelBackbone(net).eval()
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        f2, f3 = backbone(x)
        stem = net.maxpool(net.relu(net.bn1(net.conv1(x))))
        expected_f2 = net.layer2(net.layer1(stem))
        torch.testing.assert_close(f2, expected_f2)
        torch.testing.assert_close(f3, net.layer3(expected_f2))
    assert (backbone.f2_channels, backbone.f3_channels) == (128, 256)


def test_a_stage_width_is_that_of_its_last_block_bottleneck_or_basic():
    assert _out_channels(nn.Sequential(BasicBlock(8, 8))) == 8
    assert _out_channels(nn.Sequential(Bottleneck(64, 16))) == 64  # bn3, not the 16-wide bn2


def test_an_unknown_backbone_is_refused_naming_the_key_and_the_known_ones():
    with pytest.raises(KeyError) as err:
        load_resnet("resnet101", pretrained=False)
    assert err.value.args == ("model.backbone: unknown backbone 'resnet101' (known: resnet18, resnet34, resnet50)",)


def test_the_hierarchical_feature_adds_the_pooled_projected_f2_and_its_bias_to_f3():
    hf = HierarchicalFeature(f2_channels=2, f3_channels=1)
    with torch.no_grad():
        hf.proj.weight.copy_(torch.tensor([2.0, -1.0]).view(1, 2, 1, 1))
        hf.proj.bias.fill_(0.5)
    # F2 (1, 2, 4, 4): channel 0 is 1 everywhere but 7 at (0, 0); channel 1 is 3 everywhere.
    f2 = torch.stack([torch.ones(4, 4), torch.full((4, 4), 3.0)])[None]
    f2[0, 0, 0, 0] = 7.0
    f3 = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])  # (1, 1, 2, 2)
    attention_input, f23 = hf(f2, f3)
    # 3x3/stride-2/pad-1 max-pool: channel 0 -> [[7, 1], [1, 1]], channel 1 -> 3; proj: 2a - b + 0.5.
    expected = f3 + torch.tensor([[[[11.5, -0.5], [-0.5, -0.5]]]])
    torch.testing.assert_close(f23, expected)
    torch.testing.assert_close(attention_input, torch.cat([f3, expected], dim=1))
    assert hf.out_channels == 2
    f3_only = SingleLevelFeature(f3_channels=1)
    assert f3_only(f2, f3) == (f3, f3) and f3_only.out_channels == 1


@pytest.mark.parametrize("make_block, width", [(lambda: BasicBlock(8, 8), 8), (lambda: Bottleneck(64, 16), 64)],
                         ids=["basic", "bottleneck"])
def test_the_classification_branch_reads_the_width_of_the_last_block_output(make_block, width):
    branch = ClassificationBranch(nn.Sequential(make_block(), make_block()), n_attributes=3)
    assert (branch.fc.in_features, branch.fc.out_features) == (width, 3)  # a Bottleneck's bn2 is 16 wide
    assert branch(torch.randn(2, width, 4, 4)).shape == (2, 3)


def test_spatial_attention_weights_each_position_by_the_sigmoid_of_its_channel_mean_and_max():
    sa = SpatialAttention()
    assert sa.conv.kernel_size == (1, 1) and sa.conv.bias is None
    with torch.no_grad():
        sa.conv.weight.copy_(torch.tensor([0.5, -0.25]).view(1, 2, 1, 1))
    f = torch.tensor([[[[1.0, 3.0]], [[5.0, -1.0]]]])  # (1, 2, 1, 2): mean [3, 1], max [5, 3]
    z = torch.tensor([0.5 * 3 - 0.25 * 5, 0.5 * 1 - 0.25 * 3])  # [0.25, -0.25]
    torch.testing.assert_close(sa(f), f * torch.sigmoid(z).view(1, 1, 1, 2))


def test_asa_softmaxes_tanh_key_dot_query_over_sqrt_c_and_weights_the_feature_by_w1():
    torch.manual_seed(0)
    asa = AttributeGuidedSpatialAttention(4, n_attributes=2)  # c' = 4: the scale is 1/2
    with torch.no_grad():
        asa.w1.copy_(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    f = torch.tensor([[[[1.0, -1.0]], [[0.5, 2.0]], [[0.0, 1.0]], [[-2.0, 0.3]]]])  # (1, 4, 1, 2)
    attr = torch.tensor([1])
    q = asa.attribute(attr)[0]  # (4,) p(a), which has a test of its own
    logits = torch.stack([torch.tanh(f[0, :, 0, j]) @ q for j in range(2)]) / 2  # Eq. 2: / sqrt(4)
    attention = torch.softmax(logits, dim=0).view(1, 1, 1, 2)
    weighted, got = asa(f, attr)
    torch.testing.assert_close(got, attention)
    torch.testing.assert_close(weighted, f * torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 4, 1, 1) * attention)


def test_asa_switched_off_weighs_each_of_the_h_times_w_positions_one_eighth():
    f = torch.arange(2 * 3 * 2 * 4, dtype=torch.float64).reshape(2, 3, 2, 4)  # h*w = 8, h+w = 6
    weighted, attention = UniformSpatialWeights()(f, torch.tensor([0, 1]))
    assert attention.shape == (2, 1, 2, 4) and attention.dtype == torch.float64
    assert torch.equal(attention, torch.full((2, 1, 2, 4), 0.125, dtype=torch.float64))
    torch.testing.assert_close(weighted, f / 8, rtol=0, atol=0)
    torch.testing.assert_close(weighted.sum(dim=(2, 3)), f.mean(dim=(2, 3)))  # sum-pooling becomes the mean


def test_the_attribute_embedding_is_the_swish_of_a_linear_map_of_its_row():
    emb = AttributeEmbedding(2, 2)
    with torch.no_grad():
        emb.embed.weight.copy_(torch.tensor([[1.0, 2.0], [-1.0, 0.5]]))
        emb.fc.weight.copy_(torch.tensor([[1.0, 0.0], [1.0, -1.0]]))
        emb.fc.bias.copy_(torch.tensor([0.0, 0.5]))
    z = torch.tensor([[-1.0, -1.0], [1.0, -0.5]])  # rows 1 then 0 through fc: [-1, -1.5 + 0.5], [1, -1 + 0.5]
    torch.testing.assert_close(emb(torch.tensor([1, 0])), z * torch.sigmoid(z))  # Eq. 2 and 5: z * sigmoid(z)


def test_aca_gates_the_pooled_feature_by_its_mlp_of_attribute_and_feature_times_w2():
    aca = AttributeGuidedChannelAttention(2, n_attributes=1)
    with torch.no_grad():
        for layer in (aca.attribute.embed, aca.attribute.fc, aca.fc1, aca.fc2):
            layer.weight.zero_()
        for layer in (aca.attribute.fc, aca.fc1):
            layer.bias.zero_()
        aca.fc1.weight.copy_(torch.tensor([[0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]))  # reads f, not q(a) = 0
        aca.fc2.weight.copy_(torch.eye(2))
        aca.fc2.bias.copy_(torch.tensor([-1.0, 0.0]))
        aca.w2.copy_(torch.tensor([2.0, 3.0]))
    f = torch.tensor([[2.0, 1.0]])
    gate = torch.sigmoid(torch.tensor([[2.0 - 1.0, 1.0]]))  # fc2(relu(fc1([q, f]))) = f + [-1, 0]
    torch.testing.assert_close(aca(f, torch.tensor([0])), f * torch.tensor([2.0, 3.0]) * gate)  # Eq. 6b


def test_channel_attention_gates_each_channel_by_the_sigmoid_of_its_bottleneck_mlp():
    ca = ChannelAttention(2, reduction=2)  # one hidden unit
    with torch.no_grad():
        ca.down.weight.copy_(torch.tensor([[1.0, -1.0]]))
        ca.down.bias.fill_(0.0)
        ca.up.weight.copy_(torch.tensor([[2.0], [-1.0]]))
        ca.up.bias.copy_(torch.tensor([0.0, 0.5]))
    f = torch.tensor([[3.0, 1.0], [1.0, 3.0]])
    # row 0: hidden relu(3 - 1) = 2, gate sigmoid([4, -1.5]); row 1: hidden relu(-2) = 0, gate sigmoid([0, 0.5])
    gate = torch.sigmoid(torch.tensor([[4.0, -1.5], [0.0, 0.5]]))
    torch.testing.assert_close(ca(f), f * gate)


@pytest.mark.parametrize("kernel", [3, 5, 7])
def test_spatial_attention_keeps_the_map_size_at_any_odd_kernel(kernel):
    sa = SpatialAttention(kernel)
    with torch.no_grad():
        sa.conv.weight.zero_()
    f = torch.randn(2, 3, 5, 6)
    torch.testing.assert_close(sa(f), f * 0.5)  # sigmoid(0), no bias


@pytest.mark.parametrize("kernel", [2, 4])
def test_spatial_attention_refuses_an_even_kernel_by_its_key(kernel):
    with pytest.raises(ValueError, match=f"^model.aga.sa_kernel: must be odd to keep the map size, got {kernel}$"):
        SpatialAttention(kernel)


@pytest.fixture
def scratch_registry(monkeypatch):
    monkeypatch.setattr(registry, "_BUILDERS", dict(registry._BUILDERS))
    monkeypatch.setattr(registry, "_USES", dict(registry._USES))


def test_a_registered_builder_is_built_by_name_and_declares_what_it_reads(scratch_registry):
    built = []

    @registry.register_model("probe", uses=["cls_loss"])
    def probe(cfg, n_attributes):
        built.append((cfg.name, n_attributes))
        return nn.Identity()

    assert "probe" in registry.available_models()
    cfg = ModelConfig(name="probe", backbone="resnet18", pretrained=False, embed_dim=8)
    assert isinstance(registry.build_model(cfg, 5), nn.Identity) and built == [("probe", 5)]
    assert registry.describe(cfg) == "model probe: backbone=resnet18 pretrained=off embed_dim=8 cls_loss=on"
    assert registry.trains_classification(cfg)
    assert "cls_loss" in registry.model_params(cfg) and "aga" not in registry.model_params(cfg)


def test_registering_an_option_no_builder_reads_is_refused_by_name(scratch_registry):
    with pytest.raises(ValueError, match=r"^register_model\('probe'\): unknown options \['colour', 'size'\]$"):
        registry.register_model("probe", uses=("size", "aga", "colour"))


def test_the_classification_branch_trains_only_where_the_model_reads_cls_loss_and_it_is_on():
    agman = ModelConfig(name="agman")
    assert registry.trains_classification(agman)
    assert not registry.trains_classification(dataclasses.replace(agman, cls_loss=False))
    assert not registry.trains_classification(ModelConfig(name="csn", cls_loss=True))


def test_model_params_leave_out_the_method_options_a_baseline_does_not_read():
    agman = ModelConfig(name="agman", embed_dim=64, aga=AGAConfig(sa=False))
    params = registry.model_params(agman)
    assert params == dataclasses.asdict(agman)
    assert params["aga"]["sa"] is False and params["embed_dim"] == 64
    csn = registry.model_params(ModelConfig(name="csn", embed_dim=64))
    assert csn == {"name": "csn", "backbone": "resnet50", "pretrained": True, "embed_dim": 64}


def test_describe_names_every_option_agman_reads():
    cfg = ModelConfig(name="agman", backbone="resnet34", pretrained=True, embed_dim=16, hierarchical=False,
                      aga=AGAConfig(asa=True, sa=False, aca=False, ca=True, sa_kernel=7, ca_reduction=4))
    assert registry.describe(cfg) == ("model agman: backbone=resnet34 pretrained=on embed_dim=16 hierarchical=off "
                                      "cls_loss=on ASA=on SA=off(k=7) ACA=off CA=on(r=4)")


def test_a_failed_download_names_its_error_and_asks_for_no_progress_bar(monkeypatch, tmp_path):
    from agman.models import backbone

    asked = []

    def offline(self, **kwargs):
        asked.append(kwargs)
        raise OSError("network unreachable")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(backbone._WEIGHTS["resnet18"].__class__, "get_state_dict", offline)
    monkeypatch.setattr(backbone.models, "resnet18", lambda weights: nn.Identity())  # no network to build
    with pytest.raises(backbone.MissingWeightsError, match=r"could not be downloaded \(OSError: network unreachable\)"):
        load_resnet("resnet18", pretrained=True)
    assert asked == [{"progress": False}]


def test_describe_shows_each_attention_switch_as_set():
    cfg = ModelConfig(name="agman", aga=AGAConfig(asa=False, sa=True, aca=True, ca=False))
    assert registry.describe(cfg).endswith("ASA=off SA=on(k=1) ACA=on CA=off(r=16)")


def test_an_unknown_model_is_refused_naming_the_key_and_the_known_ones():
    with pytest.raises(KeyError) as err:
        registry.build_model(ModelConfig(name="nope"), 4)
    assert err.value.args == ("model.name: unknown model 'nope' (known: agman, asenet_v2, attnfashion, csn)",)
