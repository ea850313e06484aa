"""Multi-level backbone and hierarchical feature (Sec. III-B, Fig. 1).

F2 and F3 are the outputs of ResNet blocks #2 and #3. The hierarchical feature is
F2,3 = F3 + proj(F2), where proj matches F2 to F3's resolution and width (the public code:
3x3/stride-2 max-pool, then a 1x1 conv with bias). The attention module receives
concat(F3, F2,3); without the hierarchical feature it receives F3 alone.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn
from torchvision import models

log = logging.getLogger(__name__)

_WEIGHTS = {
    "resnet18": models.ResNet18_Weights.IMAGENET1K_V1,
    "resnet34": models.ResNet34_Weights.IMAGENET1K_V1,
    # V1 is the weight set the public code's torchvision `pretrained=True` loaded.
    "resnet50": models.ResNet50_Weights.IMAGENET1K_V1,
}


class MissingWeightsError(RuntimeError):
    """``model.pretrained: true`` and the ImageNet weights can be neither read nor downloaded."""


def weights_file(name: str) -> Path:
    """Where torchvision keeps the ImageNet weights of backbone ``name``: ``$TORCH_HOME/hub/checkpoints``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / _WEIGHTS[name].url.rsplit("/", 1)[-1]


def load_resnet(name: str, pretrained: bool) -> models.ResNet:
    """A torchvision ResNet, with its ImageNet weights when ``pretrained``.

    The weights come from torchvision's cache (``weights_file``) or its download. When neither
    works (an offline machine), this stops with MissingWeightsError: training from random
    initialisation instead would be another experiment, so it happens only with
    ``model.pretrained: false``.
    """
    if name not in _WEIGHTS:
        raise KeyError(f"model.backbone: unknown backbone {name!r} (known: {', '.join(_WEIGHTS)})")
    net = getattr(models, name)(weights=None)
    if pretrained:
        try:
            state = _WEIGHTS[name].get_state_dict(progress=False)
        except Exception as err:  # URLError, socket errors, HTTP errors: all mean "not available"
            path = weights_file(name)
            raise MissingWeightsError(
                f"model.pretrained: true, but the ImageNet weights of {name} ({path.name}) are not in "
                f"{path.parent} and could not be downloaded ({type(err).__name__}: {err}); put {path.name} there "
                f"(torchvision reads $TORCH_HOME/hub/checkpoints), or set model.pretrained: false to train from "
                f"random initialisation on purpose") from None
        net.load_state_dict(state)
    return net


class MultiLevelBackbone(nn.Module):
    """ResNet blocks #1-#3 returning (F2, F3); block #4 is handed to the classification branch."""

    def __init__(self, resnet: models.ResNet):
        super().__init__()
        self.to_f2 = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool, resnet.layer1,
                                   resnet.layer2)
        self.block3 = resnet.layer3
        self.f2_channels = _out_channels(resnet.layer2)
        self.f3_channels = _out_channels(resnet.layer3)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f2 = self.to_f2(images)  # (B, C2, H/8, W/8)
        f3 = self.block3(f2)  # (B, C3, H/16, W/16)
        return f2, f3


def _out_channels(layer: nn.Sequential) -> int:
    last = layer[-1]
    bn = getattr(last, "bn3", None) or last.bn2  # Bottleneck ends in bn3, BasicBlock in bn2
    return bn.num_features


class HierarchicalFeature(nn.Module):
    """F2,3 = F3 + proj(F2); returns (attention input, classification-branch input)."""

    def __init__(self, f2_channels: int, f3_channels: int):
        super().__init__()
        # 3x3/stride-2/pad-1 gives ceil(H/2), as block #3's stride-2 conv does, for any input size.
        self.pool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.proj = nn.Conv2d(f2_channels, f3_channels, kernel_size=1, bias=True)
        self.out_channels = 2 * f3_channels

    def forward(self, f2: torch.Tensor, f3: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f23 = f3 + self.proj(self.pool(f2))  # (B, C3, h, w)
        return torch.cat([f3, f23], dim=1), f23  # (B, 2*C3, h, w), (B, C3, h, w)


class SingleLevelFeature(nn.Module):
    """The ablation without the hierarchical feature: attention and classification see F3."""

    def __init__(self, f3_channels: int):
        super().__init__()
        self.out_channels = f3_channels

    def forward(self, f2: torch.Tensor, f3: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return f3, f3
