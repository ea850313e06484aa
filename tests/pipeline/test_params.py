"""Each stage's slice of the config: a parameter change reaches exactly the stages that read it."""

from __future__ import annotations

import copy

import pytest
import yaml

from agman.config import resolve
from agman.models import model_params
from agman.pipeline.matrix import cell_config
from agman.pipeline.params import cell_params, slot_params
from tests.helpers import ROOT


def params(profile: str = "demo", **base_model_aga) -> dict:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["profile"] = profile
    raw["model"]["aga"].update(base_model_aga)
    return raw


def changed_cells(before: dict, after: dict) -> set[str]:
    cfg_a, cfg_b = resolve(before)[0], resolve(after)[0]
    return {cell for cell in cfg_a.cells if cell_params(cfg_a, cell) != cell_params(cfg_b, cell)}


@pytest.mark.parametrize("profile", ["demo", "paper", "ci"])
def test_switching_sa_off_reaches_only_the_agman_family_cells_that_use_sa(profile):
    cfg = resolve(params(profile))[0]
    changed = changed_cells(params(profile), params(profile, sa=False))
    expected = {cell for cell, c in cfg.cells.items()
                if c.variant not in ("csn", "asenet_v2", "attnfashion", "no_sa")}
    assert changed == expected
    assert len(changed) == 15


def test_a_baseline_cells_model_slice_holds_no_option_its_model_ignores():
    cfg = resolve(params())[0]
    for cell in ("fashionai-csn", "deepfashion-asenet_v2", "zappos-attnfashion"):
        model = cell_params(cfg, cell)["train"]["model"]
        assert not {"aga", "hierarchical", "cls_loss"} & set(model)
        assert model == model_params(cell_config(cfg, cell, 0).model)
    assert {"aga", "hierarchical", "cls_loss"} <= set(cell_params(cfg, "fashionai-agman")["train"]["model"])


def test_an_embedding_size_change_reaches_every_cell():
    after = copy.deepcopy(params())
    after["model"]["embed_dim"] = 512
    before = params()
    before["profiles"]["demo"]["model"].pop("embed_dim")
    after["profiles"]["demo"]["model"].pop("embed_dim")
    assert changed_cells(before, after) == set(resolve(before)[0].cells)


def test_the_split_is_not_in_the_zappos_slices_and_the_demo_settings_only_in_a_stand_ins():
    demo, paper = resolve(params())[0], resolve(params("paper"))[0]
    assert "split" not in slot_params(demo, "zappos")["prepare"]
    assert "split" in slot_params(demo, "fashionai")["prepare"]
    assert "demo" in slot_params(demo, "fashionai")["download"]
    assert "demo" not in slot_params(paper, "fashionai")["download"]
