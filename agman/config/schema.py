"""The config tree: frozen dataclasses mirroring ``params.yaml``, one field per knob, each with
its meaning and the paper's value. Read this file beside ``params.yaml``.

``params.yaml``'s base blocks (``data``, ``triplets``, ``model``, ``loss``, ``train``, ``eval``)
hold the paper's values; ``profiles.<name>`` holds named sets of overrides (``demo``, ``paper``,
``ci``) and the top-level ``profile`` picks one. Loading, type checking and profile merging are in
``agman.config.load``; the matrix of table cells (variants, per-slot and per-cell configs) in
``agman.pipeline.matrix``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from agman.experiments import SLOTS  # the table slots: the three datasets of the paper's tables


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
    format: Literal["jpeg", "array"] = "array"  # raw uint8 arrays (no decoding: 150 KB per image at 224 px,
    # 27 GB for FashionAI, 43 GB for DeepFashion) or the crops as small JPEGs (~10x smaller, ~1,000
    # images/s per core to decode; BENCHMARKS.md "GPU")
    jpeg_quality: int = 90  # quality of the re-encoded crops (format jpeg)


@dataclass(frozen=True)
class DatasetSource:
    # the data a table slot uses: the real dataset (fashionai: Table 2, deepfashion: Table 3,
    # zappos: Table 4) or its procedural stand-in (demo_*)
    dataset: str = "fashionai"  # a name of agman.data.registry (checked when the slot's config is built)
    root: str = ""  # its folder in the genuine layout, relative to the repo root; "" = the dataset's default
    # this slot's data.image_size; 0 = data.image_size (the paper: 224 for every dataset). The demo
    # profile gives the FashionAI stand-in 64 px: its neckline and sleeve cues are lost at 32 px.
    image_size: int = 0


@dataclass(frozen=True)
class DataConfig:
    # dataset and root are set for each cell from datasets.<slot>; params.yaml does not set them
    dataset: str = "fashionai"
    root: str = ""  # the slot's root (its default filled in by agman.pipeline.matrix.slot_config)
    image_size: int = 224  # Resize(shorter side) + CenterCrop side (paper: 224)
    num_workers: int = 4  # DataLoader and image-cache worker processes (0 = in the main process)
    # how cached pixels reach the training device (agman.data.feed): host = DataLoader workers read
    # each batch into pinned memory; device = the whole array cache held in GPU memory (27 GB for
    # FashionAI at 224 px; needs cache.format array). The pixels are the same either way
    feed: Literal["host", "device"] = "host"
    split: SplitConfig = field(default_factory=SplitConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    demo: DemoConfig = field(default_factory=DemoConfig)


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
    pretrained: bool = True  # ImageNet weights (torchvision cache or download; missing ones stop the run) (paper: yes)
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
    # autocast dtype of the model's forward on CUDA (ignored on CPU; the scoring is always exact);
    # none = full precision. No float16: it needs a GradScaler, which the loop does not run
    amp_dtype: Literal["bfloat16", "none"] = "bfloat16"
    memory_format: Literal["auto", "channels_last", "contiguous"] = "auto"  # auto: channels_last on CUDA only
    compile: bool = False  # torch.compile the model (CUDA only; slow to start; not with cuda_graphs)
    # replay each full batch's training step from a CUDA graph (agman.training.step; CUDA only,
    # one process): the same computation without launching its kernels one by one from Python
    cuda_graphs: bool = True
    # let cuDNN time its algorithms for the fixed shapes (CUDA only). Off: on an H200 it gained
    # nothing at batch 16 and made reruns differ in the last bits (BENCHMARKS.md "GPU")
    cudnn_benchmark: bool = False
    check_every: int = 50  # batches between the host's reads of the losses (a non-finite loss stops the run)
    max_batches: int = 0  # stop each epoch after this many batches (0 = all; for smoke runs)
    # processes (GPUs) one cell trains on: > 1 makes the train stage relaunch itself under torchrun
    # (docs/multi-gpu.md); batch_size stays the global batch and must be divisible by it
    nproc: int = 1
    # with several processes: BatchNorm statistics over the global batch (SyncBatchNorm), as with
    # one process; false = each process's own micro-batch statistics (ignored with one process)
    sync_bn: bool = True
    # the same numbers on every x86 CPU, as far as the libraries allow (agman.portable;
    # docs/cross-machine.md): ATen and oneDNN capped at AVX2, MKL on its vendor-independent path,
    # 2 threads, deterministic algorithms. Costs time; not a setting of the paper
    portable: bool = False


@dataclass(frozen=True)
class EvalConfig:
    batch_size: int = 256  # distinct images per forward pass when embedding
    chunk_size: int = 1024  # queries ranked at once; bounds memory to chunk x candidates




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
