"""One config tree of frozen dataclasses mirroring ``params.yaml``.

``params.yaml`` is the single source of every knob. Its base blocks (``data``, ``triplets``,
``model``, ``loss``, ``train``, ``eval``) hold the paper's values; ``profiles.<name>`` holds named
sets of overrides (``demo``, ``paper``, ``ci``) and the top-level ``profile`` picks one, so
``dvc exp run -S profile=paper`` switches everything at once. A profile's value wins over the
base block for the keys it names, so to change such a key under that profile, set
``profiles.<name>.<key>``. Profiles may not override the method switches (``model.name``,
``model.hierarchical``, ``model.cls_loss``, ``model.aga.*``, ``loss.weighting``): that keeps
``dvc exp run -S model.aga.sa=false`` meaningful under every profile.

Unknown keys and wrong types fail with a message naming the key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml


class ConfigError(ValueError):
    """A params file that does not match the config tree; the message names the key."""


@dataclass(frozen=True)
class SplitConfig:
    # random: seeded 8:1:1 by image (paper); asen: ASEN's published FashionAI split files;
    # official: DeepFashion's list_eval_partition.txt. Zappos50k always uses the CSN split.
    method: Literal["random", "asen", "official"] = "random"
    asen_dir: str = "data/raw/fashionai/asen_split"  # folder of ASEN's filenames_/query_/candidate_ files
    train: float = 0.8  # fraction of images for training (paper: 8:1:1)
    valid: float = 0.1  # fraction for validation (paper: 0.1)
    test: float = 0.1  # fraction for test (paper: 0.1)
    query_fraction: float = 0.2  # queries vs candidates within valid/test (paper: 1:4 -> 0.2)
    seed: int = 0  # seed of the random split (the paper does not give one)


@dataclass(frozen=True)
class DemoConfig:
    images_per_attribute: int = 600  # demo FashionAI: rendered images annotated with each attribute
    deepfashion_images: int = 2000  # demo DeepFashion: rendered images (each multi-label)
    zappos_images: int = 2000  # demo Zappos50k: rendered images (split 70/10/20 as CSN)
    zappos_triplets: int = 2000  # demo Zappos50k: training triplets per condition (paper: 200k);
    # the val and test lists get a tenth and a fifth of it, as CSN's 20k and 40k
    render_size: int = 128  # side of the rendered JPEGs in pixels (demo only)
    jpeg_quality: int = 90  # JPEG quality of the rendered images (demo only)
    seed: int = 0  # renderer seed: same seed, byte-identical dataset


@dataclass(frozen=True)
class CacheConfig:
    format: Literal["jpeg", "array"] = "jpeg"  # resized crops as small JPEGs, or raw uint8 arrays (no decode,
    # 150 KB per image at 224 px: 27 GB for FashionAI)
    jpeg_quality: int = 90  # quality of the re-encoded crops (format jpeg)


DatasetName = Literal["fashionai", "deepfashion", "zappos", "demo_fashionai", "demo_deepfashion", "demo_zappos"]


def default_root(dataset: str) -> str:
    """data/raw/<dataset> for a real dataset, data/demo/<name> for a stand-in."""
    kind = dataset.removeprefix("demo_")
    return f"data/demo/{kind}" if kind != dataset else f"data/raw/{kind}"


@dataclass(frozen=True)
class DatasetSource:
    # the data a table slot uses: the real dataset (fashionai: Table 2, deepfashion: Table 3,
    # zappos: Table 4) or its procedural stand-in (demo_*)
    dataset: DatasetName = "fashionai"
    root: str = ""  # its folder in the genuine layout, relative to the repo root; "" = default_root(dataset)
    # this slot's data.image_size; 0 = data.image_size (the paper: 224 for every dataset). The demo
    # profile gives the FashionAI stand-in 64 px: its neckline and sleeve cues are lost at 32 px.
    image_size: int = 0

    def __post_init__(self):
        if not self.root:  # frozen: the derived default is set once, here
            object.__setattr__(self, "root", default_root(self.dataset))


@dataclass(frozen=True)
class DataConfig:
    # dataset and root are set for each cell from datasets.<slot>; params.yaml does not set them
    dataset: DatasetName = "fashionai"
    root: str = ""  # "" = default_root(dataset)
    image_size: int = 224  # Resize(shorter side) + CenterCrop side (paper: 224)
    num_workers: int = 4  # DataLoader and image-cache worker processes (0 = in the main process)
    split: SplitConfig = field(default_factory=SplitConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    demo: DemoConfig = field(default_factory=DemoConfig)

    def __post_init__(self):
        if not self.root:
            object.__setattr__(self, "root", default_root(self.dataset))


@dataclass(frozen=True)
class TripletsConfig:
    per_epoch: int = 100_000  # triplets per epoch (paper: 100k); on Zappos50k taken in turn from a
    # seeded shuffle of the CSN training lists, so every listed triplet is used before any repeats
    seed: int = 0  # sampling seed (ASEN's code leaves sampling unseeded; we do not)


@dataclass(frozen=True)
class AGAConfig:
    asa: bool = True  # attribute-guided spatial attention, Eq. 1-3 (paper: on)
    sa: bool = True  # spatial attention, Eq. 4 (paper: on)
    aca: bool = True  # attribute-guided channel attention, Eq. 5-6 (paper: on)
    ca: bool = True  # channel attention, reduction-expansion, Fig. 3d (paper: on)
    sa_kernel: int = 1  # SA conv kernel size (paper text: 1; public code: 7)
    ca_reduction: int = 16  # CA bottleneck ratio (paper: not given; SE-Net's 16)


@dataclass(frozen=True)
class ModelConfig:
    # model builder (agman.models.registry): agman, or a baseline of Tables 2-4 on the same
    # backbone and recipe (csn, asenet_v2, attnfashion; these ignore hierarchical, cls_loss, aga)
    name: Literal["agman", "csn", "asenet_v2", "attnfashion"] = "agman"
    backbone: Literal["resnet50", "resnet34", "resnet18"] = "resnet50"  # (paper: resnet50)
    pretrained: bool = True  # ImageNet weights via torchvision when downloadable (paper: yes)
    embed_dim: int = 1024  # attribute-specific embedding size c' (paper: 1024; code: 512)
    hierarchical: bool = True  # F2,3 = F3 + proj(F2), attention sees concat(F3, F2,3) (paper: on)
    cls_loss: bool = True  # classification branch on attribute types, Eq. 7 (paper: on)
    aga: AGAConfig = field(default_factory=AGAConfig)


@dataclass(frozen=True)
class FixedWeights:
    triplet: float = 0.5  # weight of L_triplet when loss.weighting=fixed (Eq. 9 at w=0: 0.5)
    cls: float = 0.5  # weight of L_c when loss.weighting=fixed (Eq. 9 at w=0: 0.5)


@dataclass(frozen=True)
class LossConfig:
    margin: float = 0.2  # triplet margin m on cosine similarity, Eq. 8 (paper: 0.2)
    weighting: Literal["uncertainty", "fixed"] = "uncertainty"  # Eq. 9 in its stable learned form, or constants
    fixed: FixedWeights = field(default_factory=FixedWeights)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 50  # training epochs (paper: 50)
    batch_size: int = 16  # triplets per batch (paper: 16)
    lr: float = 1e-4  # Adam learning rate (paper: 1e-4)
    lr_step: int = 3  # StepLR step in epochs (paper: 3)
    lr_gamma: float = 0.9  # StepLR decay (paper: 0.9)
    seeds: tuple[int, ...] = (0,)  # every cell is trained once per seed; tables show mean +- std
    seed: int = 0  # this run's torch/numpy/python seed: set for each cell from `seeds`, not in params.yaml
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto = CUDA when present
    amp_dtype: Literal["bfloat16", "float16", "none"] = "bfloat16"  # autocast dtype on CUDA (ignored on CPU)
    memory_format: Literal["auto", "channels_last", "contiguous"] = "auto"  # auto: channels_last on CUDA only
    compile: bool = False  # torch.compile the model (CUDA only; slow to start)
    max_batches: int = 0  # stop each epoch after this many batches (0 = all; for smoke runs)
    # processes (GPUs) one cell trains on: > 1 makes the train stage relaunch itself under torchrun
    # (README "Several GPUs"); batch_size stays the global batch and must be divisible by it
    nproc: int = 1
    # with several processes: BatchNorm statistics over the global batch (SyncBatchNorm), as with
    # one process; false = each process's own micro-batch statistics (ignored with one process)
    sync_bn: bool = True


@dataclass(frozen=True)
class EvalConfig:
    batch_size: int = 64  # images per forward pass when embedding
    chunk_size: int = 1024  # queries ranked at once; bounds memory to chunk x candidates


#: The table slots: the three datasets of the paper's tables.
SLOTS = ("fashionai", "deepfashion", "zappos")


@dataclass(frozen=True)
class CellConfig:
    slot: str = "fashionai"  # table slot (a key of `datasets`)
    variant: str = "agman"  # model variant (a key of `variants`)


@dataclass(frozen=True)
class Config:
    profile: str = "demo"  # which entry of `profiles` is applied over the base blocks
    # table slot -> the data it uses (paper: the three real datasets; demo: their stand-ins)
    datasets: dict[str, DatasetSource] = field(default_factory=lambda: {s: DatasetSource(s) for s in SLOTS})
    # variant name -> overrides of the `model` block (agman = {}; baselines and ablation rows)
    variants: dict[str, dict] = field(default_factory=lambda: {"agman": {}})
    # the table cells that dvc.yaml trains and evaluates ("<slot>-<variant>" -> slot, variant); each
    # cell's stages run once per train.seeds
    cells: dict[str, CellConfig] = field(default_factory=lambda: {"fashionai-agman": CellConfig()})
    data: DataConfig = field(default_factory=DataConfig)
    triplets: TripletsConfig = field(default_factory=TripletsConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


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
        raise ConfigError(f"unknown key {where}{unknown[0]} (known: {', '.join(sorted(names))})")
    kwargs = {}
    for name, value in raw.items():
        key = f"{prefix}.{name}" if prefix else name
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = from_dict(hint, value, key)
        else:
            kwargs[name] = _check_type(value, hint, key)
    return cls(**kwargs)


def _merge(base: dict, override: dict, prefix: str = "") -> dict:
    out = dict(base)
    for name, value in override.items():
        key = f"{prefix}.{name}" if prefix else name
        if isinstance(value, dict) and isinstance(out.get(name), dict):
            out[name] = _merge(out[name], value, key)
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
    for other, body in profiles.items():
        # Every profile is validated, not only the active one, so a typo fails today.
        if not isinstance(body or {}, dict):
            raise ConfigError(f"profiles.{other}: expected a mapping")
        for key in _flat_keys(body or {}):
            if any(key == c or key.startswith(c + ".") for c in CELL_KEYS):
                raise ConfigError(f"profiles.{other}.{key}: set for each cell; use datasets.<slot> instead")
        try:
            _check_cells(from_dict(Config, _merge(params, body or {}), ""))
        except ConfigError as err:
            raise ConfigError(f"profiles.{other}: {err}") from None
    return from_dict(Config, _merge(params, override), ""), overridden


def variant_model(cfg: Config, variant: str) -> ModelConfig:
    """The base ``model`` block with ``variants.<variant>`` applied over it."""
    if variant not in cfg.variants:
        raise ConfigError(f"unknown variant {variant!r} (variants: {', '.join(cfg.variants)})")
    return from_dict(ModelConfig, _merge(to_dict(cfg.model), cfg.variants[variant]), f"variants.{variant}")


def _check_cells(cfg: Config) -> None:
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


def slot_config(cfg: Config, slot: str) -> Config:
    """The config of a table slot's data stages: ``data.dataset``/``data.root`` (and
    ``data.image_size`` where the slot sets one) from ``datasets``."""
    if slot not in cfg.datasets:
        raise ConfigError(f"unknown table slot {slot!r} (slots: {', '.join(cfg.datasets)})")
    source = cfg.datasets[slot]
    size = source.image_size or cfg.data.image_size
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, dataset=source.dataset, root=source.root,
                                                             image_size=size))


def cell_config(cfg: Config, cell: str, seed: int) -> Config:
    """The config one cell's training runs with: its slot's data, its variant's model, the seed."""
    if cell not in cfg.cells:
        raise ConfigError(f"unknown cell {cell!r} (cells: {', '.join(cfg.cells)})")
    if seed not in cfg.train.seeds:
        raise ConfigError(f"seed {seed} is not in train.seeds {list(cfg.train.seeds)}")
    out = slot_config(cfg, cfg.cells[cell].slot)
    return dataclasses.replace(out, model=variant_model(cfg, cfg.cells[cell].variant),
                               train=dataclasses.replace(cfg.train, seed=seed))


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

