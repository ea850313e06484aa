"""Reading ``params.yaml`` into the config tree (``agman.config.schema``): type checking, profile
merging, and the checks that keep ``dvc exp run -S <key>=...`` meaningful.

A profile's value wins over the base block for the keys it names, so to change such a key under
that profile, set ``profiles.<name>.<key>``. Profiles may not override the method switches
(``model.name``, ``model.hierarchical``, ``model.cls_loss``, ``model.aga.*``, ``loss.weighting``):
that keeps ``dvc exp run -S model.aga.sa=false`` meaningful under every profile. Unknown keys and
wrong types fail with a message naming the key where it is written: ``train.epochs`` in the base
block, ``profiles.paper.train.epochs`` in a profile.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

from agman.config.schema import Config, ModelConfig
from agman.experiments import SLOTS


class ConfigError(ValueError):
    """A params file that does not match the config tree; the message names the key."""


#: Keys a profile may not set, so that `-S <key>=...` always takes effect, and so that what DVC
#: itself reads from params.yaml to fan out stages (cells, train.seeds) is what runs.
PROTECTED_KEYS = ("model.name", "model.hierarchical", "model.cls_loss", "model.aga", "loss.weighting",
                  "cells", "variants", "train.seeds")
#: Keys set for each cell (from datasets.<slot> and train.seeds), never in params.yaml.
CELL_KEYS = ("data.dataset", "data.root", "train.seed")


def _check_type(value: Any, annotation: Any, key: str) -> Any:
    origin = typing.get_origin(annotation)
    if origin is Literal:
        allowed = typing.get_args(annotation)
        if value not in allowed:
            raise ConfigError(f"{key}: {value!r} is not one of {list(allowed)}")
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if annotation is float:
        # YAML reads `1e-4` as a string (YAML 1.1 wants a dot); accept it as a number.
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"{key}: expected a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    if origin is tuple:  # tuple[X, ...], written as a YAML list
        if not isinstance(value, (list, tuple)) or not value:
            raise ConfigError(f"{key}: expected a non-empty list, got {value!r}")
        item = typing.get_args(annotation)[0]
        return tuple(_check_type(v, item, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict:  # dict[str, X]: a mapping of named entries
        if not isinstance(value, dict) or not value:
            raise ConfigError(f"{key}: expected a non-empty mapping, got {value!r}")
        item = typing.get_args(annotation)[1]
        out = {}
        for name, v in value.items():
            if dataclasses.is_dataclass(item):
                out[name] = from_dict(item, v, f"{key}.{name}")
            elif not isinstance(v or {}, dict):
                raise ConfigError(f"{key}.{name}: expected a mapping, got {v!r}")
            else:
                out[name] = v or {}
        return out
    raise TypeError(f"unsupported annotation {annotation!r} for {key}")  # a bug in this module


def from_dict(cls: type, raw: Any, prefix: str = "") -> Any:
    """Build a config dataclass from a mapping, checking every key and type."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix or 'params'}: expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise ConfigError(f"{where}{unknown[0]}: unknown key (known: {', '.join(sorted(names))})")
    kwargs = {}
    for name, value in raw.items():
        key = f"{prefix}.{name}" if prefix else name
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = from_dict(hint, value, key)
        else:
            kwargs[name] = _check_type(value, hint, key)
    return cls(**kwargs)


def merge(base: dict, override: dict, prefix: str = "") -> dict:
    out = dict(base)
    for name, value in override.items():
        key = f"{prefix}.{name}" if prefix else name
        if isinstance(value, dict) and isinstance(out.get(name), dict):
            out[name] = merge(out[name], value, key)
        else:
            out[name] = value
    return out


def _flat_keys(tree: dict, prefix: str = "") -> list[str]:
    keys = []
    for name, value in tree.items():
        key = f"{prefix}.{name}" if prefix else name
        keys.extend(_flat_keys(value, key) if isinstance(value, dict) and value else [key])
    return keys


def resolve(params: dict) -> tuple[Config, list[str]]:
    """Apply the selected profile over the base blocks; return the config and the overridden keys."""
    if not isinstance(params, dict):
        raise ConfigError("params: expected a mapping at the top level")
    params = dict(params)
    profiles = params.pop("profiles", {}) or {}
    name = params.get("profile", Config.profile)
    if name not in profiles:
        raise ConfigError(f"profile: {name!r} is not defined under profiles (defined: {sorted(profiles)})")
    override = profiles[name] or {}
    if not isinstance(override, dict):
        raise ConfigError(f"profiles.{name}: expected a mapping")
    if "profile" in override:
        raise ConfigError(f"profiles.{name}.profile: a profile cannot select another profile")
    overridden = _flat_keys(override)
    for key in overridden:
        if any(key == p or key.startswith(p + ".") for p in PROTECTED_KEYS):
            raise ConfigError(
                f"profiles.{name}.{key}: profiles may not set the method switches "
                f"({', '.join(PROTECTED_KEYS)}); set {key} in the base block"
            )
    for key in _flat_keys(params):
        if any(key == c or key.startswith(c + ".") for c in CELL_KEYS):
            raise ConfigError(f"{key}: set for each cell (data.dataset and data.root from datasets.<slot>, "
                              "train.seed from train.seeds); remove it")
    # The base block on its own first, so that an error in it names its key there, not under the
    # first profile merged over it.
    check_cells(from_dict(Config, params, ""))
    for other, body in profiles.items():
        # Every profile is validated, not only the active one, so a typo fails today.
        if not isinstance(body or {}, dict):
            raise ConfigError(f"profiles.{other}: expected a mapping")
        for key in _flat_keys(body or {}):
            if any(key == c or key.startswith(c + ".") for c in CELL_KEYS):
                raise ConfigError(f"profiles.{other}.{key}: set for each cell; use datasets.<slot> instead")
        # The base passed, so a wrong key or type here is one the profile writes: named under it.
        merged = from_dict(Config, merge(params, body or {}), f"profiles.{other}")
        try:
            check_cells(merged)
        except ConfigError as err:  # across blocks: the profile's values with the base's
            raise ConfigError(f"profiles.{other}: {err}") from None
        if other == name:
            active = merged
    return active, overridden


def variant_model(cfg: Config, variant: str) -> ModelConfig:
    """The base ``model`` block with ``variants.<variant>`` applied over it."""
    if variant not in cfg.variants:
        raise ConfigError(f"unknown variant {variant!r} (variants: {', '.join(cfg.variants)})")
    return from_dict(ModelConfig, merge(to_dict(cfg.model), cfg.variants[variant]), f"variants.{variant}")


def check_cells(cfg: Config) -> None:
    """The checks across blocks and of the matrix of cells, on a profile's merged config."""
    if cfg.train.compile and cfg.train.cuda_graphs:
        raise ConfigError("train.compile: torch.compile and train.cuda_graphs both take over the training step; "
                          "set one of them to false")
    if cfg.train.check_every < 1:
        raise ConfigError(f"train.check_every: {cfg.train.check_every} must be at least 1")
    if cfg.data.feed == "device" and cfg.data.cache.format != "array":
        raise ConfigError("data.feed: device holds the cached pixels in GPU memory as they are, which needs "
                          "data.cache.format: array (a JPEG cache would need decoding)")
    if cfg.train.nproc < 1 or cfg.train.batch_size % cfg.train.nproc:
        raise ConfigError(f"train.nproc: {cfg.train.nproc} processes cannot split train.batch_size "
                          f"{cfg.train.batch_size} evenly (the global batch); use a divisor of it")
    if set(cfg.datasets) != set(SLOTS):
        raise ConfigError(f"datasets: expected exactly the table slots {list(SLOTS)}, got {list(cfg.datasets)}")
    for slot, source in cfg.datasets.items():
        if source.image_size < 0:
            raise ConfigError(f"datasets.{slot}.image_size: {source.image_size} is negative (0 = data.image_size)")
    for variant in cfg.variants:
        variant_model(cfg, variant)
    for name, cell in cfg.cells.items():
        if cell.slot not in cfg.datasets:
            raise ConfigError(f"cells.{name}.slot: unknown slot {cell.slot!r} (slots: {', '.join(SLOTS)})")
        if cell.variant not in cfg.variants:
            raise ConfigError(f"cells.{name}.variant: unknown variant {cell.variant!r}")
        if name != f"{cell.slot}-{cell.variant}":
            # The name is the DVC stage suffix and the folder name: it must say what runs.
            raise ConfigError(f"cells.{name}: must be named {cell.slot}-{cell.variant}")


def load_params(path: str | Path = "params.yaml") -> tuple[Config, list[str]]:
    """Read ``params.yaml`` and resolve it: the config and the keys the profile overrode.

    Errors name the file and the key."""
    path = Path(path)
    try:
        params = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    try:
        return resolve(params)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def load_config(path: str | Path = "params.yaml") -> Config:
    return load_params(path)[0]


def to_dict(obj: Any) -> Any:
    """A config (or part of it) as plain nested dicts."""
    return dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else obj


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """``{"model.aga.sa": True, ...}``: the form MLflow params and fingerprints take."""
    tree = to_dict(obj)
    out: dict[str, Any] = {}
    for name, value in tree.items():
        key = f"{prefix}.{name}" if prefix else name
        if isinstance(value, dict):
            out.update(flatten(value, key))
        else:
            out[key] = value
    return out


def fingerprint(*parts: Any) -> str:
    """A stable hash of config parts, used to decide whether a checkpoint may be resumed."""
    blob = json.dumps([to_dict(p) for p in parts], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]

