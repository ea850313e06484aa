"""Image loading and the torch datasets that feed training and evaluation.

Transforms follow REFERENCE.md section 2: Resize(shorter side) + CenterCrop to the training
resolution, RandomHorizontalFlip for training only, ImageNet mean/std.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision.transforms import v2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def build_transform(image_size: int, train: bool) -> v2.Compose:
    steps = [v2.Resize(image_size), v2.CenterCrop(image_size)]
    if train:
        steps.append(v2.RandomHorizontalFlip())
    steps += [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    return v2.Compose(steps)


def load_image(path: Path) -> Image.Image:
    """Decode an image as RGB; a missing or corrupt file raises naming the file."""
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: image not found") from None
    except (UnidentifiedImageError, OSError) as err:
        raise OSError(f"{path}: cannot decode image ({err})") from None


class TripletDataset(Dataset):
    """Item ``i`` = (anchor, positive, negative, attribute_index) of triplet row ``i``."""

    def __init__(self, table: pd.DataFrame, triplets: np.ndarray, root: str | Path, image_size: int):
        self.paths = [Path(root) / p for p in table["path"]]
        self.triplets = triplets
        self.transform = build_transform(image_size, train=True)

    def __len__(self) -> int:
        return len(self.triplets)

    def __getitem__(self, i: int):
        a, p, n, attr = (int(x) for x in self.triplets[i])
        images = [self.transform(load_image(self.paths[k])) for k in (a, p, n)]
        return (*images, attr)


class ImageDataset(Dataset):
    """Item ``i`` = (image, attribute_index) of the given table rows, for embedding."""

    def __init__(self, table: pd.DataFrame, root: str | Path, image_size: int):
        self.paths = [Path(root) / p for p in table["path"]]
        self.attributes = table["attribute_index"].to_numpy()
        self.transform = build_transform(image_size, train=False)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        return self.transform(load_image(self.paths[i])), int(self.attributes[i])
