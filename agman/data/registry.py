"""Every name ``data.dataset`` takes, and what it is: its format, task, default root, attribute list,
and how the ``download`` and ``prepare`` stages obtain and read it.

Each real dataset is one module (``agman.data.fashionai``, ``.deepfashion``, ``.zappos``: its
parser, its release and acquisition spec ``ACQUIRE``, and ``read(data)``); each stand-in is one
module of ``agman.data.demo`` (its writer and ``render(data)``), written in its real dataset's
genuine layout and read by that dataset's ``read``. Adding a dataset is one such module and one
line of ``_SPECS``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from agman.config import DataConfig
from agman.data import deepfashion, fashionai, zappos
from agman.data.acquire import AcquireSpec, acquire, images_sha256, manifest
from agman.data.attributes import Attribute
from agman.data.demo import deepfashion as demo_deepfashion
from agman.data.demo import fashionai as demo_fashionai
from agman.data.demo import zappos as demo_zappos
from agman.data.prepared import PreparedData

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetSpec:
    """One ``data.dataset`` name."""

    name: str  # the data.dataset name
    kind: str  # the genuine format it is written in: fashionai, deepfashion or zappos
    demo: bool  # a procedural stand-in (rendered from data.demo), not the real dataset
    task: str  # "retrieval" (one row per annotated image and attribute type) or "triplets" (CSN's lists)
    default_root: str  # data.root when it is not set: data/raw/<kind>, or data/demo/<kind> for a stand-in
    layout: AcquireSpec  # the genuine layout under data.root (and, for a real dataset, how to acquire it)
    read: Callable[[DataConfig], PreparedData]  # data.root parsed and split: the prepare stage
    obtain: Callable[[DataConfig], dict]  # data.root put in place; returns the download stage's manifest
    attributes: tuple[Attribute, ...] | None = None  # the attribute list, where it does not come from the data


def _acquired(layout: AcquireSpec, data: DataConfig) -> dict:
    return acquire(layout, data.root)


def _rendered(layout: AcquireSpec, render: Callable[[DataConfig], None], data: DataConfig) -> dict:
    render(data)
    log.info("demo %s rendered to %s", layout.dataset, data.root)
    # The image hash tells a re-rendered stand-in from the previous one when only the pixels differ.
    return {**manifest(layout, data.root), "demo": dataclasses.asdict(data.demo),
            "images_sha256": images_sha256(layout, data.root)}


def _real(task: str, layout: AcquireSpec, read: Callable[[DataConfig], PreparedData],
          attributes: tuple[Attribute, ...] | None = None) -> DatasetSpec:
    """A real dataset, named after its format; the ``download`` stage acquires it."""
    kind = layout.dataset
    return DatasetSpec(kind, kind, False, task, f"data/raw/{kind}", layout, read, partial(_acquired, layout),
                       attributes)


def _stand_in(name: str, task: str, layout: AcquireSpec, read: Callable[[DataConfig], PreparedData],
              render: Callable[[DataConfig], None], attributes: tuple[Attribute, ...] | None = None) -> DatasetSpec:
    """A stand-in in the format of ``layout``; the ``download`` stage renders it with ``render``."""
    kind = layout.dataset
    return DatasetSpec(name, kind, True, task, f"data/demo/{kind}", layout, read, partial(_rendered, layout, render),
                       attributes)


_SPECS: tuple[DatasetSpec, ...] = (
    _real("retrieval", fashionai.ACQUIRE, fashionai.read, fashionai.FASHIONAI),
    _real("retrieval", deepfashion.ACQUIRE, deepfashion.read),
    _real("triplets", zappos.ACQUIRE, zappos.read),
    _stand_in("demo_fashionai", "retrieval", fashionai.ACQUIRE,
              partial(fashionai.read, attributes=demo_fashionai.ATTRIBUTES), demo_fashionai.render,
              demo_fashionai.ATTRIBUTES),
    _stand_in("demo_deepfashion", "retrieval", deepfashion.ACQUIRE, deepfashion.read, demo_deepfashion.render),
    _stand_in("demo_zappos", "triplets", zappos.ACQUIRE, zappos.read, demo_zappos.render),
)
_BY_NAME = {spec.name: spec for spec in _SPECS}

#: Every name ``data.dataset`` may take.
DATASET_NAMES: tuple[str, ...] = tuple(_BY_NAME)


def dataset_spec(name: str) -> DatasetSpec:
    """The dataset ``data.dataset`` names; KeyError naming the known ones for any other name."""
    if name not in _BY_NAME:
        raise KeyError(f"data.dataset: unknown dataset {name!r} (known: {', '.join(DATASET_NAMES)})")
    return _BY_NAME[name]


def dataset_attributes(name: str) -> tuple[Attribute, ...]:
    """The attribute list of a dataset name from ``data.dataset``; KeyError where the list is read
    from the data (DeepFashion: :func:`agman.data.deepfashion.read_deepfashion_attributes`) or the
    task has conditions without values (Zappos: :data:`agman.data.zappos.CONDITIONS`)."""
    spec = dataset_spec(name)
    if spec.attributes is None:
        raise KeyError(f"data.dataset: {name} has no fixed attribute list (it comes with the data)")
    return spec.attributes


def read_dataset(data: DataConfig) -> PreparedData:
    """The ``prepare`` stage: ``data.root`` parsed and split (the prepared data before the image cache)."""
    return dataset_spec(data.dataset).read(data)


def obtain(data: DataConfig) -> dict:
    """The ``download`` stage: ``data.root`` put in its genuine layout (a stand-in rendered from
    ``data.demo``, a real dataset acquired); returns the manifest to write. Raises
    :class:`agman.data.errors.MissingDataError` when the user has to fetch files by hand."""
    return dataset_spec(data.dataset).obtain(data)
