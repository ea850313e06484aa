"""The split a run saw, as an MLflow dataset input: the UI's Dataset column then names the data
source and split (``demo_fashionai:train``) with a digest of what was actually read.

The digest covers the split's rows of the prepared table (every column, so a relabelled image
or a moved split boundary changes it), the split's triplet list where the task has one, and the
image cache's digest of its stored pixels (``cache.json``), so re-rendered or re-decoded images
change it too. MLflow's own digest of a DataFrame reads its first rows only.
"""

from __future__ import annotations

import hashlib
import warnings

import pandas as pd

from agman.data.prepared import PreparedData

#: The MLflow input context of each split.
CONTEXTS = {"train": "training", "valid": "validation", "test": "testing"}


def split_digest(data: PreparedData, split: str) -> str:
    """16 hex digits over the split's table rows, its triplets and the cached pixels (``data`` as
    the cache stage wrote it)."""
    rows = data.table[data.table["split"] == split]
    digest = hashlib.sha256(pd.util.hash_pandas_object(rows, index=False).to_numpy().tobytes())
    digest.update(",".join(rows.columns).encode())
    if split in data.triplets:
        digest.update(data.triplets[split].tobytes())
    digest.update(data.cache.sha256.encode())
    return digest.hexdigest()[:16]


def split_dataset(data: PreparedData, split: str, source: str):
    """The MLflow dataset ``<source>:<split>`` (``source``: the data source, e.g. ``fashionai``),
    whose MLflow source is the cached prepared table it was read from."""
    from mlflow.data.pandas_dataset import from_pandas

    rows = data.table[data.table["split"] == split].reset_index(drop=True)
    path = str(data.cache.folder.parent / "items.csv")
    with warnings.catch_warnings():
        # MLflow registers its local-file source twice and warns that a path matches both; and it
        # hints that integer columns cannot hold missing values, which a prepared table has none of.
        warnings.simplefilter("ignore", UserWarning)
        dataset = from_pandas(rows, source=path, name=f"{source}:{split}", digest=split_digest(data, split))
        dataset.schema  # noqa: B018 (inferred once, here inside the filter, not when MLflow logs it)
    return dataset
