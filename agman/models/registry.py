"""Named model builders (timm style): runs refer to a variant by ``model.name``."""

from __future__ import annotations

import logging
from typing import Callable

from torch import nn

from agman.config import ModelConfig

log = logging.getLogger(__name__)

_BUILDERS: dict[str, Callable[[ModelConfig, int], nn.Module]] = {}


def register_model(name: str):
    def wrap(fn: Callable[[ModelConfig, int], nn.Module]):
        _BUILDERS[name] = fn
        return fn

    return wrap


def available_models() -> list[str]:
    return sorted(_BUILDERS)


def describe(cfg: ModelConfig) -> str:
    """One line with every option the build settles, logged once."""
    on = lambda flag: "on" if flag else "off"  # noqa: E731
    a = cfg.aga
    return (f"model {cfg.name}: backbone={cfg.backbone} pretrained={on(cfg.pretrained)} "
            f"embed_dim={cfg.embed_dim} hierarchical={on(cfg.hierarchical)} cls_loss={on(cfg.cls_loss)} "
            f"ASA={on(a.asa)} SA={on(a.sa)}(k={a.sa_kernel}) ACA={on(a.aca)} CA={on(a.ca)}(r={a.ca_reduction})")


def build_model(cfg: ModelConfig, n_attributes: int) -> nn.Module:
    if cfg.name not in _BUILDERS:
        raise KeyError(f"model.name: unknown model {cfg.name!r} (known: {', '.join(available_models())})")
    log.info(describe(cfg))
    return _BUILDERS[cfg.name](cfg, n_attributes)


@register_model("agman")
def agman(cfg: ModelConfig, n_attributes: int) -> nn.Module:
    from agman.models.agman import AGMAN

    return AGMAN(cfg, n_attributes)
