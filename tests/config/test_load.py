"""Reading params.yaml: every profile, overrides, the matrix's checks, and errors naming the key."""

import pytest
import yaml

from agman.config import Config, ConfigError, flatten, load_config, resolve
from agman.experiments import required_cells
from agman.pipeline.matrix import slot_config
from tests.helpers import ROOT


def params():
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def test_params_yaml_loads_every_profile():
    raw = params()
    for name in raw["profiles"]:
        cfg, _ = resolve({**raw, "profile": name})
        assert isinstance(cfg, Config) and cfg.profile == name


def test_paper_profile_has_the_papers_recipe():
    cfg, _ = resolve({**params(), "profile": "paper"})
    assert (cfg.model.backbone, cfg.data.image_size, cfg.train.batch_size, cfg.train.lr) == ("resnet50", 224, 16, 1e-4)
    assert (cfg.train.lr_step, cfg.train.lr_gamma, cfg.train.epochs) == (3, 0.9, 50)
    assert (cfg.triplets.per_epoch, cfg.loss.margin, cfg.model.embed_dim) == (100_000, 0.2, 1024)


def test_profile_overrides_base_and_reports_keys():
    cfg, keys = resolve(params())
    assert cfg.profile == "demo" and cfg.datasets["zappos"].dataset == "demo_zappos"
    assert "datasets.zappos.dataset" in keys and "data.image_size" in keys
    assert slot_config(cfg, "zappos").data.root == "data/demo/zappos"
    paper, _ = resolve({**params(), "profile": "paper"})
    assert slot_config(paper, "deepfashion").data.root == "data/raw/deepfashion"


def test_cells_cover_the_papers_tables():
    cfg, _ = resolve(params())
    retrieval = ["agman", "csn", "asenet_v2", "attnfashion", "aga_only", "aga_hier", "aga_cls", "no_asa", "no_sa",
                 "no_aca", "no_ca"]
    expected = {f"{slot}-{v}" for slot in ("fashionai", "deepfashion") for v in retrieval}
    expected |= {f"zappos-{v}" for v in ("agman", "csn", "asenet_v2", "attnfashion")}
    assert set(cfg.cells) == expected
    assert set(cfg.cells) == {f"{slot}-{variant}" for slot, variant in required_cells()}  # no more, no fewer


@pytest.mark.parametrize("edit, message", [
    (lambda raw: raw["cells"].update({"zappos-bogus": {"slot": "zappos", "variant": "bogus"}}),
     "cells.zappos-bogus.variant: unknown variant 'bogus'"),
    (lambda raw: raw["cells"].update({"x-agman": {"slot": "fashionai", "variant": "agman"}}),
     "cells.x-agman: must be named fashionai-agman"),
    (lambda raw: raw["variants"].update({"odd": {"aga": {"ssa": False}}}), "variants.odd.aga.ssa: unknown key"),
    (lambda raw: raw["data"].update({"dataset": "zappos"}), "data.dataset: set for each cell"),
    (lambda raw: raw["train"].update({"seed": 1}), "train.seed: set for each cell"),
    (lambda raw: raw["profiles"]["demo"].update({"cells": {}}), "profiles.demo.cells"),
    (lambda raw: raw["profiles"]["demo"]["train"].update({"seeds": [1]}), "profiles.demo.train.seeds"),
    (lambda raw: raw["profiles"]["demo"]["datasets"].update({"extra": {"dataset": "zappos"}}),
     "datasets: expected exactly the table slots"),
])
def test_bad_matrix_definitions_fail_naming_the_key(edit, message):
    raw = params()
    edit(raw)
    with pytest.raises(ConfigError, match=message):
        resolve(raw)


def test_base_switch_is_honoured_under_every_profile():
    raw = params()
    raw["model"]["aga"]["sa"] = False
    for name in raw["profiles"]:
        assert resolve({**raw, "profile": name})[0].model.aga.sa is False


@pytest.mark.parametrize("path, value, message", [
    (("model", "aga", "sa_kernal"), 7, "model.aga.sa_kernal: unknown key"),
    (("train", "epochs"), "ten", "train.epochs: expected an integer"),
    (("model", "hierarchical"), "yes", "model.hierarchical: expected true/false"),
    (("model", "backbone"), "vgg16", "model.backbone: 'vgg16' is not one of"),
    (("bogus",), 1, "bogus: unknown key"),
    (("train", "amp_dtype"), "float16", "train.amp_dtype: 'float16' is not one of"),
    (("data", "feed"), "gpu", "data.feed: 'gpu' is not one of"),
])
def test_bad_keys_and_types_fail_naming_the_key(path, value, message):
    raw = params()
    node = raw
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        resolve(raw)


def test_profile_may_not_set_a_method_switch():
    raw = params()
    raw["profiles"]["demo"]["model"]["aga"] = {"sa": False}
    with pytest.raises(ConfigError, match="profiles.demo.model.aga.sa"):
        resolve(raw)


def test_typo_in_inactive_profile_fails():
    raw = params()
    raw["profiles"]["paper"] = {"train": {"epoch": 3}}
    with pytest.raises(ConfigError, match="profiles.paper.train.epoch: unknown key"):
        resolve(raw)


def test_a_bad_value_in_the_base_block_is_named_there_not_under_a_profile():
    raw = params()
    raw["train"]["epochs"] = "fifty"
    for name in raw["profiles"]:
        with pytest.raises(ConfigError) as err:
            resolve({**raw, "profile": name})
        assert str(err.value) == "train.epochs: expected an integer, got 'fifty'"


def test_a_bad_value_in_a_profile_is_named_under_that_profile():
    raw = params()
    raw["profiles"]["paper"] = {"train": {"epochs": "fifty"}}
    with pytest.raises(ConfigError) as err:
        resolve({**raw, "profile": "demo"})  # the inactive profile is checked too
    assert str(err.value) == "profiles.paper.train.epochs: expected an integer, got 'fifty'"


@pytest.mark.parametrize("blocks, message", [
    ({"train": {"compile": True}}, "train.compile: torch.compile and train.cuda_graphs both take over"),
    ({"train": {"check_every": 0}}, "train.check_every: 0 must be at least 1"),
    ({"data": {"feed": "device", "cache": {"format": "jpeg"}}}, "data.feed: device holds the cached pixels"),
])
def test_a_check_across_blocks_that_the_base_fails_is_named_in_the_base(blocks, message):
    raw = params()
    for block, values in blocks.items():
        for key, value in values.items():
            raw[block][key] = {**raw[block][key], **value} if isinstance(value, dict) else value
    with pytest.raises(ConfigError, match="^" + message):
        resolve(raw)


def test_params_file_errors_name_the_file_then_the_key(tmp_path):
    path = tmp_path / "params.yaml"
    raw = params()
    raw["train"]["epochs"] = "fifty"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == f"{path}: train.epochs: expected an integer, got 'fifty'"


def test_unknown_profile_and_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="profile: 'nope'"):
        resolve({**params(), "profile": "nope"})
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "params.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match=str(bad)):
        load_config(bad)


def test_config_is_frozen_and_flattens():
    cfg = load_config(ROOT / "params.yaml")
    with pytest.raises(AttributeError):
        cfg.train.lr = 1.0  # type: ignore[misc]
    flat = flatten(cfg)
    assert flat["model.aga.sa"] is True and "profile" in flat
