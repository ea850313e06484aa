"""The full-size replica generator (benchmarks/replica.py) at a tiny scale: what it writes is what
the download stage and the readers take from a user's data/raw/<dataset>/, with the real counts
scaled down."""

import sys

import pytest

from agman.config import DataConfig
from agman.data.deepfashion import read_deepfashion_attributes
from agman.data.registry import obtain, read_dataset
from tests.helpers import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import replica  # noqa: E402

SCALE = 0.001


@pytest.fixture(scope="module")
def replicas(tmp_path_factory):
    out = tmp_path_factory.mktemp("replicas")
    for dataset in replica.DATASETS:
        replica.write_replica(dataset, out, scale=SCALE, size=16, seed=0)
    return out


def _read(replicas, dataset):
    data = DataConfig(dataset=dataset, root=str(replicas / dataset))
    manifest = obtain(data)
    return manifest, read_dataset(data)


def test_the_fashionai_replica_is_two_archives_the_download_stage_merges(replicas):
    assert sorted(p.name for p in (replicas / "fashionai").iterdir()) == list(replica.FASHIONAI_ARCHIVES)
    manifest, data = _read(replicas, "fashionai")
    rows = round(replica.FASHIONAI_ROWS * SCALE)
    assert manifest["images"]["count"] == rows and len(data.table) == rows
    per_task = data.table.groupby("attribute_index").size().to_numpy()
    assert per_task.tolist() == replica._split_counts(rows, replica.FASHIONAI_TASK_WEIGHTS).tolist()
    label_csv = (replicas / "fashionai" / "Annotations" / "label.csv").read_text().splitlines()
    maybe = sum("m" in line.rsplit(",", 1)[1] for line in label_csv)
    assert 0 < maybe < len(label_csv) * 0.2


def test_the_deepfashion_replica_has_the_real_attribute_list_and_partition_shape(replicas):
    manifest, data = _read(replicas, "deepfashion")
    n_images = round(replica.DEEPFASHION_IMAGES * SCALE)
    assert manifest["images"]["count"] == n_images
    attributes = read_deepfashion_attributes(replicas / "deepfashion")
    assert [len(a.values) for a in attributes] == list(replica.DEEPFASHION_TYPE_COUNTS)
    assert any(" " in name for a in attributes for name in a.values)
    partition = (replicas / "deepfashion" / "Eval" / "list_eval_partition.txt").read_text().split()
    counts = [partition.count(s) for s in ("train", "val", "test")]
    assert counts == replica._split_counts(n_images, replica.DEEPFASHION_PARTITION).tolist()
    assert set(data.table["split"]) == {"train", "valid", "test"}


def test_the_zappos_replica_is_the_three_archives_the_download_stage_stores(replicas):
    archives = sorted(p.name for p in (replicas / "zappos" / "archives").glob("*.zip"))
    assert archives == ["csn_zappos_triplets.zip", "ut-zap50k-data.zip", "ut-zap50k-images.zip"]
    manifest, data = _read(replicas, "zappos")
    assert manifest["images"]["count"] == max(replica.ZAPPOS_MIN_IMAGES, round(replica.ZAPPOS_IMAGES * SCALE))
    for split, full in zip(("train", "valid", "test"), replica.ZAPPOS_TRIPLETS, strict=True):
        assert len(data.triplets[split]) == 4 * round(full * SCALE)


def test_every_replica_image_is_a_distinct_file(replicas):
    for dataset, folder in (("fashionai", "Images"), ("deepfashion", "img"), ("zappos", "ut-zap50k-images")):
        files = [p.read_bytes() for p in (replicas / dataset / folder).rglob("*.jpg")]
        assert len(set(files)) == len(files) > 0, dataset


def test_a_replica_is_byte_identical_for_equal_arguments(tmp_path):
    for out in (tmp_path / "a", tmp_path / "b"):
        replica.write_replica("deepfashion", out, scale=0.0002, size=16, seed=3)
    for name in ("img.zip", "list_attr_cloth.txt", "list_attr_img.txt", "list_eval_partition.txt"):
        assert (tmp_path / "a/deepfashion" / name).read_bytes() == (tmp_path / "b/deepfashion" / name).read_bytes()
