"""The prepared-data hand-over between the stages: renumbering, the cached folder (agman.data.prepared)."""

import numpy as np
import pandas as pd

from agman.data.prepared import PreparedData, cache_prepared, drop_skipped, read_prepared, write_prepared
from tests.data.test_cache import write_images


def test_drop_skipped_renumbers_rows_and_triplets():
    table = pd.DataFrame({"path": ["a", "b", "c", "d"], "split": ["train"] * 4})
    triplets = {"train": np.array([[0, 1, 2, 0], [0, 3, 2, 1], [3, 2, 0, 2]])}
    data = PreparedData(table, ["x", "y", "z"], "triplets", triplets=triplets)
    index = pd.DataFrame({"path": ["a", "c", "d"], "entry": [0, 1, 2]})  # "b" did not decode
    kept, dropped = drop_skipped(data, index)
    assert list(kept.table["path"]) == ["a", "c", "d"] and list(kept.table["entry"]) == [0, 1, 2]
    np.testing.assert_array_equal(kept.triplets["train"], [[0, 2, 1, 1], [2, 1, 0, 2]])
    assert dropped == {"rows": 1, "triplets_train": 1}


def test_cache_prepared_writes_a_readable_folder(tmp_path):
    paths = write_images(tmp_path)
    table = pd.DataFrame({"path": paths, "attribute": "a", "attribute_index": 0, "value": [0, 1] * 3,
                          "split": "train", "role": "train"})
    (tmp_path / paths[0]).write_bytes(b"broken")
    data = cache_prepared(PreparedData(table, ["a"], "retrieval"), tmp_path, tmp_path / "out", 8, fmt="array")
    again = read_prepared(tmp_path / "out")
    assert len(again.table) == 5 and again.meta["cache"]["skipped"] == 1 and again.cache is not None
    assert again.cache[int(again.entries[0])].shape == (3, 8, 8)
    assert list(data.table["path"]) == paths[1:]


def test_write_prepared_replaces_the_folder_and_keeps_triplets(tmp_path):
    table = pd.DataFrame({"path": ["a", "b", "c"], "split": ["train", "valid", "test"]})
    triplets = {"train": np.array([[0, 1, 2, 3]], dtype=np.int32)}
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "stale.txt").write_text("from an earlier run")
    write_prepared(tmp_path / "out", PreparedData(table, ["x"], "triplets", triplets=triplets, meta={"dataset": "d"}))
    again = read_prepared(tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and not (tmp_path / "out" / "stale.txt").exists()
    assert again.task == "triplets" and again.attributes == ["x"] and again.meta["dataset"] == "d"
    assert again.triplets["train"].dtype == np.int64 and again.triplets["train"].tolist() == [[0, 1, 2, 3]]
    pd.testing.assert_frame_equal(again.table, table)
