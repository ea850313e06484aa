"""A trained network rebuilt from its checkpoint, ready to embed images: for ``agman search``, the
figures and the evaluation stage."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from agman.config import ModelConfig, from_dict
from agman.data.images import normalise
from agman.device import autocast_context, pick_device, resolve_memory_format
from agman.io import sha256_file
from agman.models import build_model
from agman.training.checkpoint import BEST_CHECKPOINT, load_checkpoint

#: Images per forward pass in ``TrainedModel.embed``.
BATCH_SIZE = 64


class UnknownAttributeError(KeyError):
    """An attribute name the checkpoint was not trained with; the message lists the valid ones."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0])


@dataclass
class TrainedModel:
    """A checkpoint's network rebuilt from its own config, in eval mode on ``device``."""

    model: torch.nn.Module
    checkpoint: Path
    config: dict  # the resolved config the run trained with (checkpoint["config"])
    attributes: list[str]  # attribute types in the model's index order
    device: torch.device
    epoch: int = 0  # the epoch after which the checkpoint was saved (its best validation score)
    val: dict = field(default_factory=dict)  # that epoch's validation metrics

    @property
    def image_size(self) -> int:
        return int(self.config["data"]["image_size"])

    @property
    def name(self) -> str:
        return self.config["model"]["name"]

    @cached_property
    def digest(self) -> str:
        """SHA-256 of the checkpoint file: a retrained run gets new gallery embeddings."""
        return sha256_file(self.checkpoint)

    def attribute_index(self, name: str) -> int:
        if name not in self.attributes:
            raise UnknownAttributeError(f"unknown attribute {name!r} for {self.checkpoint}; valid attributes: "
                                        f"{', '.join(self.attributes)}")
        return self.attributes.index(name)

    @torch.no_grad()
    def run(self, pixels: torch.Tensor, attribute: int):
        """The model's output (``ModelOutput``, float32) for (B, 3, S, S) uint8 images under one attribute."""
        images = normalise(pixels.to(self.device))  # (B, 3, S, S) float32
        attr = torch.full((len(pixels),), attribute, dtype=torch.long, device=self.device)  # (B,)
        with autocast_context(self.device, self.config["train"]["amp_dtype"]):
            out = self.model(images, attr)
        return type(out)(*(t.float() if isinstance(t, torch.Tensor) else t for t in out))

    def embed(self, pixels: list[np.ndarray] | np.ndarray, attribute: int) -> np.ndarray:
        """(N, c') float32 embeddings of (S, S, 3) uint8 images, in batches of BATCH_SIZE."""
        chunks = []
        for start in range(0, len(pixels), BATCH_SIZE):
            batch = torch.from_numpy(np.stack(pixels[start:start + BATCH_SIZE])).permute(0, 3, 1, 2)  # (B, 3, S, S)
            chunks.append(self.run(batch, attribute).embedding.cpu().numpy())
        return np.concatenate(chunks)


def load_trained(path: str | Path, device: str = "auto") -> TrainedModel:
    """A run folder (its ``best.pt``) or a checkpoint file, ready to embed."""
    path = Path(path)
    checkpoint = path / BEST_CHECKPOINT if path.is_dir() else path
    ckpt = load_checkpoint(checkpoint)
    for key in ("model", "config", "attributes"):
        if key not in ckpt:
            raise KeyError(f"{checkpoint}: not a best.pt checkpoint of the train stage (no {key!r})")
    # The checkpoint's own model config rebuilds the network; its weights replace ImageNet's.
    model_cfg = from_dict(ModelConfig, {**ckpt["config"]["model"], "pretrained": False}, "model")
    torch_device = pick_device(device)
    model = build_model(model_cfg, len(ckpt["attributes"]))
    model.load_state_dict(ckpt["model"])
    memory_format = resolve_memory_format(ckpt["config"]["train"]["memory_format"], torch_device)
    return TrainedModel(model.to(torch_device, memory_format=memory_format).eval(), checkpoint, ckpt["config"],
                        list(ckpt["attributes"]),
                        torch_device, ckpt.get("epoch", 0), ckpt.get("val", {}))
