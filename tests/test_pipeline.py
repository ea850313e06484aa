"""Stage logic that the end-to-end test does not reach: the download stage's exit on missing
manual data, dataset/split combinations, and the checks on attribute values."""

import logging

import pandas as pd
import pytest

from agman import pipeline
from agman.config import Config, DataConfig, DatasetSource, SplitConfig, slot_config
from agman.data.attributes import Attribute


def with_slot(slot: str, dataset: str, **data) -> Config:
    """A config whose ``slot`` uses ``dataset``; ``data`` overrides the data block."""
    cfg = Config(data=DataConfig(**data))
    return Config(datasets={**cfg.datasets, slot: DatasetSource(dataset)}, data=cfg.data)


def test_data_root_defaults_follow_the_dataset():
    assert DatasetSource("zappos").root == "data/raw/zappos"
    assert DatasetSource("demo_deepfashion").root == "data/demo/deepfashion"
    assert DatasetSource("fashionai", root="/mnt/fa").root == "/mnt/fa"
    assert slot_config(with_slot("zappos", "demo_zappos"), "zappos").data.root == "data/demo/zappos"


def test_download_of_a_missing_manual_dataset_exits_with_instructions(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        pipeline.run_download(Config(), "deepfashion")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "list_attr_img.txt" in err and "img.zip" in err and str(tmp_path / "data/raw/deepfashion") in err
    assert "dvc repro" in err and not (tmp_path / "data" / "deepfashion").exists()


def test_download_renders_a_stand_in_and_writes_its_manifest(tmp_path, monkeypatch):
    import json

    from agman.config import DemoConfig

    monkeypatch.chdir(tmp_path)
    cfg = with_slot("zappos", "demo_zappos", demo=DemoConfig(zappos_images=60, zappos_triplets=20, render_size=24))
    pipeline.run_download(cfg, "zappos")
    manifest = json.loads((tmp_path / "data" / "zappos" / "download.json").read_text())
    assert manifest["images"]["count"] == 60 and manifest["demo"]["zappos_images"] == 60
    data = pipeline.read_dataset(slot_config(cfg, "zappos"))
    assert data.task == "triplets" and set(data.triplets) == {"train", "valid", "test"}
    assert set(data.table["split"]) <= {"train", "valid", "test", "unused"}
    # The cache stage depends on this manifest: one changed pixel must change it.
    image = next((tmp_path / "data" / "demo" / "zappos").rglob("*.jpg"))
    image.write_bytes(image.read_bytes()[:-1] + bytes([image.read_bytes()[-1] ^ 1]))
    from agman.data.acquire import images_sha256

    assert images_sha256("zappos", "data/demo/zappos") != manifest["images_sha256"]
    assert len(data.triplets["train"]) == 4 * 20 and (data.triplets["train"][:, 3] < 4).all()


@pytest.mark.parametrize("dataset, method, message", [
    ("demo_deepfashion", "asen", "asen is FashionAI's published split"),
    ("demo_fashionai", "official", "official is DeepFashion's evaluation partition"),
])
def test_split_methods_belong_to_their_dataset(dataset, method, message):
    cfg = with_slot("fashionai", dataset, split=SplitConfig(method=method))
    with pytest.raises(ValueError, match=message):
        pipeline.read_dataset(slot_config(cfg, "fashionai"))


def test_values_without_images_warn_and_a_type_without_images_stops(caplog):
    attributes = (Attribute("colour", ("red", "green", "blue")), Attribute("size", ("s", "m")))
    table = pd.DataFrame({"attribute_index": [0, 0, 1], "value": [0, 0, 1]})
    with caplog.at_level(logging.WARNING):
        pipeline._check_values(table, attributes)
    assert "3 attribute values have no image" in caplog.text
    assert "colour/green" in caplog.text and "colour/blue" in caplog.text and "size/s" in caplog.text
    with pytest.raises(ValueError, match="attribute type size has no annotated image"):
        pipeline._check_values(table[table["attribute_index"] == 0], attributes)
