"""The paper profile's cell stage on a CUDA GPU, through the real stages, on a small FashionAI
replica: ResNet-50 at 224 px, batch 16, bf16, the step replayed from a CUDA graph, the array
cache fed by DataLoader workers, exact test MAP. Skipped without CUDA."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from tests.helpers import ROOT

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

sys.path.insert(0, str(ROOT / "benchmarks"))
import common  # noqa: E402
import real_scale  # noqa: E402
import replica  # noqa: E402


def test_the_paper_profile_cell_trains_graphed_and_scores_on_a_small_replica(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    common.plant_imagenet_weights(tmp_path / "torch", "resnet50")
    replica.write_replica("fashionai", tmp_path / "replicas", scale=0.002, size=96, seed=0)  # 361 images
    work = tmp_path / "work"
    work.mkdir()
    real_scale.write_params(work, tmp_path / "replicas", ["fashionai"],
                            ["train.epochs=1", "train.max_batches=12", "train.check_every=4", "triplets.per_epoch=192",
                             "data.num_workers=2"])
    real_scale.run_stage(work, ["-m", "stages.resolve"], None)
    for stage in real_scale.STAGES:
        real_scale.run_stage(work, ["-m", f"stages.{stage}", "fashionai"], None)
    _, log = real_scale.run_stage(work, ["-m", "stages.cell", "fashionai-agman"], None)

    assert "device cuda, autocast bfloat16, memory format auto, data feed host, step CUDA graph" in log
    assert "epoch 1: 12 batches, 576 images" in log
    metrics = json.loads((work / "reports" / "metrics" / "fashionai-agman.json").read_text())
    assert 0.0 <= metrics["map"] <= 1.0 and metrics["n_queries"] > 0
    run = work / "runs" / "fashionai" / "agman" / "seed0"
    best = torch.load(run / "best.pt", weights_only=False)
    assert (best["config"]["model"]["backbone"], best["config"]["data"]["image_size"]) == ("resnet50", 224)
    last = torch.load(run / "last.pt", weights_only=False)
    assert last["optimizer"]["param_groups"][0]["capturable"] is False  # the form every device loads
