"""Named model builders (timm style): runs refer to a variant by ``model.name``.

Each builder declares which of ``model.hierarchical``, ``model.cls_loss`` and ``model.aga`` it
reads, so the build log names only the options that shape the network: the baselines of
Tables 2-4 ignore all three.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Callable

from torch import nn

from agman.config import ModelConfig
from agman.models.agman import AGMAN
from agman.models.asenet_v2 import ASENetV2
from agman.models.attnfashion import AttnFashion
from agman.models.csn import CSN

log = logging.getLogger(__name__)

METHOD_OPTIONS = ("hierarchical", "cls_loss", "aga")

_BUILDERS: dict[str, Callable[[ModelConfig, int], nn.Module]] = {}
_USES: dict[str, tuple[str, ...]] = {}


def register_model(name: str, uses: tuple[str, ...] = ()):
    """Register a builder under ``name``; ``uses`` lists the METHOD_OPTIONS it reads."""
    unknown = set(uses) - set(METHOD_OPTIONS)
    if unknown:
        raise ValueError(f"register_model({name!r}): unknown options {sorted(unknown)}")

    def wrap(fn: Callable[[ModelConfig, int], nn.Module]):
        _BUILDERS[name] = fn
        _USES[name] = tuple(uses)
        return fn

    return wrap


def available_models() -> list[str]:
    return sorted(_BUILDERS)


def describe(cfg: ModelConfig) -> str:
    """One line with every option the build of ``cfg.name`` reads, logged once."""
    on = lambda flag: "on" if flag else "off"  # noqa: E731
    uses = _USES[cfg.name]
    parts = [f"model {cfg.name}: backbone={cfg.backbone} pretrained={on(cfg.pretrained)} embed_dim={cfg.embed_dim}"]
    if "hierarchical" in uses:
        parts.append(f"hierarchical={on(cfg.hierarchical)}")
    if "cls_loss" in uses:
        parts.append(f"cls_loss={on(cfg.cls_loss)}")
    if "aga" in uses:
        a = cfg.aga
        parts.append(f"ASA={on(a.asa)} SA={on(a.sa)}(k={a.sa_kernel}) "
                     f"ACA={on(a.aca)} CA={on(a.ca)}(r={a.ca_reduction})")
    return " ".join(parts)


def model_params(cfg: ModelConfig) -> dict:
    """The ``model`` keys the build of ``cfg.name`` reads (the METHOD_OPTIONS it does not use left
    out): what a cell's parameter slice and its run fingerprint hold, so that ``-S model.aga.sa=false``
    leaves the baselines' cells up to date."""
    uses = _USES[cfg.name]
    return {k: v for k, v in dataclasses.asdict(cfg).items() if k not in METHOD_OPTIONS or k in uses}


def trains_classification(cfg: ModelConfig) -> bool:
    """Whether the built model has the classification branch (so L_c joins the loss)."""
    return "cls_loss" in _USES[cfg.name] and cfg.cls_loss


def build_model(cfg: ModelConfig, n_attributes: int) -> nn.Module:
    if cfg.name not in _BUILDERS:
        raise KeyError(f"model.name: unknown model {cfg.name!r} (known: {', '.join(available_models())})")
    log.info(describe(cfg))
    return _BUILDERS[cfg.name](cfg, n_attributes)


@register_model("agman", uses=METHOD_OPTIONS)
def agman(cfg: ModelConfig, n_attributes: int) -> nn.Module:
    return AGMAN(cfg, n_attributes)


@register_model("csn")
def csn(cfg: ModelConfig, n_attributes: int) -> nn.Module:
    return CSN(cfg, n_attributes)


@register_model("asenet_v2")
def asenet_v2(cfg: ModelConfig, n_attributes: int) -> nn.Module:
    return ASENetV2(cfg, n_attributes)


@register_model("attnfashion")
def attnfashion(cfg: ModelConfig, n_attributes: int) -> nn.Module:
    return AttnFashion(cfg, n_attributes)
