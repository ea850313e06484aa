"""The download stage: its error on missing manual data, and a stand-in's manifest."""

import json
import logging

import pytest

from agman.config import Config, DataConfig, DatasetSource, DemoConfig
from agman.data.acquire import images_sha256
from agman.data.errors import MissingDataError
from agman.data.registry import dataset_spec, read_dataset
from agman.pipeline import download
from agman.pipeline.entry import stage_main
from agman.pipeline.matrix import slot_config


def with_slot(slot: str, dataset: str, root: str = "", **data) -> Config:
    """A config whose ``slot`` uses ``dataset``; ``data`` overrides the data block."""
    cfg = Config(data=DataConfig(**data))
    return Config(datasets={**cfg.datasets, slot: DatasetSource(dataset, root=root)}, data=cfg.data)


def test_download_of_a_missing_manual_dataset_says_what_to_get_and_where(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MissingDataError) as err:
        download.run(Config(), "deepfashion")
    message = str(err.value)
    assert "list_attr_img.txt" in message and "img.zip" in message
    assert str(tmp_path / "data/raw/deepfashion") in message
    assert "dvc repro" in message and not (tmp_path / "data" / "deepfashion").exists()


def test_the_stage_prints_a_missing_dataset_as_one_line_naming_the_file_and_key(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AGMAN_DEBUG", raising=False)
    monkeypatch.setattr("agman.pipeline.entry.load_config", Config)
    with pytest.raises(SystemExit) as exit_info:
        stage_main(download.run, "usage", ["fashionai"])
    assert exit_info.value.code == 2
    [line] = capsys.readouterr().err.splitlines()
    first = tmp_path / "data/raw/fashionai/fashionAI_attributes_train1.zip"
    assert line.startswith(f"error: {first}: data.root: FashionAI")
    assert "(2 files missing)" in line and "fashionAI_attributes_train2.zip" in line and "dvc repro" in line


def test_a_real_dataset_outside_its_raw_folder_is_named_in_a_warning(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.WARNING), pytest.raises(MissingDataError):
        download.run(with_slot("deepfashion", "deepfashion", root=str(tmp_path / "elsewhere")), "deepfashion")
    assert "lies outside data/raw/deepfashion/" in caplog.text and 'datasets.deepfashion.root to ""' in caplog.text


def test_download_renders_a_stand_in_and_writes_its_manifest(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = with_slot("zappos", "demo_zappos", demo=DemoConfig(zappos_images=60, zappos_triplets=20, render_size=24))
    download.run(cfg, "zappos")
    manifest = json.loads((tmp_path / "data" / "zappos" / "download.json").read_text())
    assert manifest["images"]["count"] == 60 and manifest["demo"]["zappos_images"] == 60
    data = read_dataset(slot_config(cfg, "zappos").data)
    assert data.task == "triplets" and set(data.triplets) == {"train", "valid", "test"}
    assert set(data.table["split"]) <= {"train", "valid", "test", "unused"}
    # The cache stage depends on this manifest: one changed pixel must change it.
    image = next((tmp_path / "data" / "demo" / "zappos").rglob("*.jpg"))
    image.write_bytes(image.read_bytes()[:-1] + bytes([image.read_bytes()[-1] ^ 1]))
    assert images_sha256(dataset_spec("demo_zappos").layout, "data/demo/zappos") != manifest["images_sha256"]
    assert len(data.triplets["train"]) == 4 * 20 and (data.triplets["train"][:, 3] < 4).all()
