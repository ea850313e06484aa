"""The matrix: each slot's data config and each cell's run config."""

import pytest
import yaml

from agman.config import Config, ConfigError, DataConfig, DatasetSource, resolve
from agman.pipeline.matrix import cell_config, slot_config
from tests.helpers import ROOT


def params():
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def with_slot(slot: str, dataset: str, root: str = "") -> Config:
    cfg = Config()
    return Config(datasets={**cfg.datasets, slot: DatasetSource(dataset, root=root)}, data=DataConfig())


def test_a_slots_data_root_defaults_to_its_datasets_folder():
    assert slot_config(with_slot("zappos", "zappos"), "zappos").data.root == "data/raw/zappos"
    assert slot_config(with_slot("zappos", "demo_zappos"), "zappos").data.root == "data/demo/zappos"
    assert slot_config(with_slot("deepfashion", "demo_deepfashion"), "deepfashion").data.root == "data/demo/deepfashion"
    assert slot_config(with_slot("fashionai", "fashionai", "/mnt/fa"), "fashionai").data.root == "/mnt/fa"


def test_an_unknown_dataset_fails_naming_the_slot_key():
    with pytest.raises(ConfigError, match="datasets.zappos.dataset: unknown dataset 'zapos' .known: fashionai"):
        slot_config(with_slot("zappos", "zapos"), "zappos")


def test_cell_config_applies_slot_variant_and_seed():
    raw = params()
    raw["train"]["seeds"] = [3, 4]
    raw["model"]["aga"]["ca"] = False  # a base switch reaches every variant that does not set it
    cfg, _ = resolve(raw)
    cell = cell_config(cfg, "deepfashion-no_sa", 4)
    assert (cell.data.dataset, cell.data.root) == ("demo_deepfashion", "data/demo/deepfashion")
    assert cell.model.aga.sa is False and cell.model.aga.ca is False and cell.train.seed == 4
    baseline = cell_config(cfg, "zappos-csn", 3)
    assert (baseline.model.name, baseline.model.cls_loss, baseline.model.hierarchical) == ("csn", False, False)
    assert slot_config(cfg, "fashionai").data.dataset == "demo_fashionai"
    with pytest.raises(ConfigError, match="seed 0 is not in train.seeds"):
        cell_config(cfg, "zappos-csn", 0)
    with pytest.raises(ConfigError, match="unknown cell 'zappos-no_sa'"):
        cell_config(cfg, "zappos-no_sa", 3)


def test_a_slot_may_set_its_own_image_size():
    raw = params()
    raw["profiles"]["demo"]["data"]["image_size"] = 40
    raw["profiles"]["demo"]["datasets"]["fashionai"]["image_size"] = 72
    cfg, _ = resolve(raw)
    assert slot_config(cfg, "fashionai").data.image_size == 72
    assert cell_config(cfg, "fashionai-csn", 0).data.image_size == 72  # what training and evaluation read
    assert slot_config(cfg, "zappos").data.image_size == 40  # 0: data.image_size
    raw["profiles"]["demo"]["datasets"]["zappos"]["image_size"] = -1
    with pytest.raises(ConfigError, match="datasets.zappos.image_size: -1 is negative"):
        resolve(raw)
