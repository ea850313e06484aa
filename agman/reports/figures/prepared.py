"""What the figures read from a slot's prepared data: test rows, cached images and value names."""

from __future__ import annotations

import numpy as np
import pandas as pd

from agman.data.prepared import PreparedData
from agman.reports.figures.layout import pretty


def cached_image(data: PreparedData, entry: int) -> np.ndarray:
    return data.cache[int(entry)].permute(1, 2, 0).numpy()  # (S, S, 3) uint8


def value_names(data: PreparedData) -> dict[str, list[str]]:
    """Attribute -> its value names (attributes.json of the prepared data)."""
    return {a["name"]: list(a["values"]) for a in data.meta.get("attributes", [])}


def value_name(names: dict[str, list[str]], attribute: str, value: int) -> str:
    values = names.get(attribute, [])
    return pretty(values[value]) if 0 <= value < len(values) else f"value {value}"


def retrieval_test_rows(data: PreparedData) -> pd.DataFrame:
    if data.task != "retrieval":
        raise ValueError(f"{data.meta.get('dataset', 'this dataset')}: retrieval figures need a retrieval dataset "
                         f"(task {data.task!r})")
    rows = data.table[data.table["split"] == "test"]
    if rows.empty:
        raise ValueError("the prepared data has no test rows")
    return rows
