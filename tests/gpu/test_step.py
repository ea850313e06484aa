"""The training step on a CUDA GPU: replayed from a CUDA graph against run eagerly, the schedule
under capture, ``last.pt`` across the two, and exact MAP on the device. Skipped without CUDA.

Tolerance. Eager and graphed steps run the same kernels (Adam capturable in both), so they may
agree bit for bit; the bound asked is bf16's: per-batch losses within 1e-2 relative and weights
within 1e-2 of the distance they moved (``apart``), the precision autocast computes in.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agman.config import LossConfig, ModelConfig
from agman.data.triplets import sample_triplets
from agman.losses import build_weighting
from agman.metrics import average_precisions
from agman.models import build_model
from agman.training.checkpoint import load_checkpoint
from agman.training.loop import TrainPaths, train
from agman.training.step import WARMUP_STEPS, GraphedStep, StepSettings, TrainStep, build_optimizer
from tests.helpers import ci_config, train_stopped_at_second_validation

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

CUDA = torch.device("cuda")
B, SIZE, N_ATTR = 8, 64, 4
RTOL = 1e-2  # bf16 (module docstring)


@pytest.fixture(autouse=True)
def fixed_algorithms(monkeypatch):
    """The same cuDNN algorithms in both runs of a comparison."""
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)


def build_step(graphed: bool, lr: float = 1e-3, float_lr: bool = False):
    torch.manual_seed(0)
    cfg = ModelConfig(backbone="resnet18", pretrained=False, embed_dim=32)
    model = build_model(cfg, N_ATTR).to(CUDA, memory_format=torch.channels_last)
    weighting = build_weighting(LossConfig(), with_cls=True).to(CUDA)
    params = [*model.parameters(), *weighting.parameters()]
    optimizer = (torch.optim.Adam(params, lr=lr, capturable=True) if float_lr  # the schedule-freezing mistake
                 else build_optimizer(params, lr, CUDA))
    step = TrainStep(model, weighting, optimizer, StepSettings(0.2, True, "bfloat16", torch.channels_last), CUDA)
    return (GraphedStep(step, 3 * B) if graphed else step), model, optimizer


def batches(n: int, short_last: bool = False):
    g = torch.Generator().manual_seed(1)
    out = []
    for k in range(n):
        b = B // 2 if short_last and k == n - 1 else B
        images = torch.randint(0, 256, (3 * b, SIZE, SIZE, 3), dtype=torch.uint8, generator=g)
        flips = torch.rand(3 * b, generator=g) < 0.5
        attrs = torch.randint(0, N_ATTR, (b,), generator=g).repeat(3)
        out.append((images.permute(0, 3, 1, 2).to(CUDA), flips.to(CUDA), attrs.to(CUDA)))  # channels-last
    return out


def weights(model) -> torch.Tensor:
    return torch.cat([p.detach().float().flatten() for p in model.parameters()])


def run(graphed: bool, data, **kwargs):
    step, model, optimizer = build_step(graphed, **kwargs)
    start = weights(model)
    losses = torch.stack([step(*batch).clone() for batch in data]).cpu()  # (n, 4)
    return step, losses, start, weights(model)


def test_graphed_steps_match_eager_ones_and_a_short_batch_runs_eagerly():
    data = batches(20, short_last=True)
    _, eager, start, w_eager = run(False, data)
    step, graphed, _, w_graphed = run(True, data)
    assert step.graph is not None and step.eager_steps == WARMUP_STEPS  # 3 eager, 16 replays, 1 short eager
    assert torch.isfinite(graphed).all()
    torch.testing.assert_close(graphed, eager, rtol=RTOL, atol=1e-4)
    apart = float((w_graphed - w_eager).norm() / (w_eager - start).norm())
    assert apart < RTOL, apart


def test_the_learning_rate_schedule_reaches_the_captured_step():
    """StepLR at gamma 0.1 shrinks a replayed step's update about tenfold; with the learning rate
    captured as a float the update would not change (the frozen schedule this guards against)."""
    def update_ratio(float_lr: bool) -> float:
        step, model, optimizer = build_step(True, lr=1e-3, float_lr=float_lr)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.1)
        data = batches(WARMUP_STEPS + 4)
        for batch in data[:-2]:
            step(*batch)
        assert step.graph is not None
        before = weights(model)
        step(*data[-2])  # a replay at lr
        moved = weights(model)
        scheduler.step()
        step(*data[-1])  # a replay at 0.1 lr, if the schedule reaches it
        return float((weights(model) - moved).abs().median() / (moved - before).abs().median())

    assert 0.03 < update_ratio(float_lr=False) < 0.3
    assert update_ratio(float_lr=True) > 0.5


def tiny_config(graphs: bool, epochs: int = 2):
    return ci_config(triplets={"per_epoch": 64}, model={"embed_dim": 16},
                     train={"epochs": epochs, "batch_size": 8, "lr": 1e-3, "lr_step": 1, "device": "cuda",
                            "cuda_graphs": graphs, "cudnn_benchmark": False, "portable": False},
                     eval={"batch_size": 64})


def make_paths(folder, data, epochs: int = 2) -> TrainPaths:
    triplet_dir = folder / "triplets"
    triplet_dir.mkdir(parents=True)
    for epoch in range(epochs):
        np.save(triplet_dir / f"epoch_{epoch:03d}.npy", sample_triplets(data.table, data.attributes, 64, 0, epoch))
    return TrainPaths(triplet_dir=triplet_dir, out_dir=folder / "run", curves=folder / "curves.csv")


@pytest.mark.parametrize("first, then", [(True, False), (False, True)])
def test_last_pt_of_one_mode_resumes_in_the_other(tmp_path, demo_data, monkeypatch, first, then):
    straight = make_paths(tmp_path / "straight", demo_data)
    full = train(tiny_config(graphs=True), demo_data, straight)

    resumed = make_paths(tmp_path / "resumed", demo_data)
    train_stopped_at_second_validation(monkeypatch, tiny_config(graphs=first), demo_data, resumed)
    second = train(tiny_config(graphs=then), demo_data, resumed)

    assert second.epoch == full.epoch == 2
    np.testing.assert_allclose([r["loss"] for r in second.history], [r["loss"] for r in full.history], rtol=RTOL)
    a, b = (load_checkpoint(p.out_dir / "last.pt") for p in (straight, resumed))
    lrs = [c["optimizer"]["param_groups"][0]["lr"] for c in (a, b)]
    assert lrs[0] == lrs[1] == pytest.approx(1e-3 * 0.81)
    keys = [k for k in a["model"] if a["model"][k].is_floating_point()]
    apart = torch.cat([(a["model"][k] - b["model"][k]).flatten() for k in keys]).norm()
    assert float(apart / torch.cat([a["model"][k].flatten() for k in keys]).norm()) < RTOL


def test_exact_map_on_the_device_matches_the_cpu_float64_reference():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(300, 64))
    c = rng.normal(size=(1200, 64))
    c[600:700] = c[500:600]  # tied candidates: the stable order decides
    q, c = (x / np.linalg.norm(x, axis=1, keepdims=True) for x in (q, c))
    ql, cl = rng.integers(0, 5, 300), rng.integers(0, 5, 1200)
    cpu = average_precisions(q, ql, c, cl, chunk_size=128)
    gpu = average_precisions(*(torch.from_numpy(x).to(CUDA) for x in (q, ql, c, cl)), chunk_size=128)
    assert np.abs(gpu - cpu).max() < 1e-12


def test_a_config_with_graphs_and_several_processes_is_refused(demo_data, tmp_path, monkeypatch):
    from agman.config import ConfigError
    from agman.training import distributed

    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    monkeypatch.setattr(distributed, "check_batch_size", lambda b: None)
    cfg = tiny_config(graphs=True, epochs=1)
    with pytest.raises(ConfigError, match="train.cuda_graphs: the captured step does not run under DDP"):
        train(cfg, demo_data, make_paths(tmp_path, demo_data, epochs=1))


def test_float32_scores_rank_on_the_device_as_the_cpus_stable_sort():
    from agman.metrics import _average_precisions_sorted

    rng = np.random.default_rng(1)
    sim = torch.from_numpy(rng.choice(np.array([-0.5, -0.0, 0.0, 0.25, 0.7], dtype=np.float32), size=(64, 1800)))
    rel = torch.from_numpy(rng.random((64, 1800)) < 0.2)
    cpu = _average_precisions_sorted(sim.double(), rel)  # the stable sort, float64
    gpu = _average_precisions_sorted(sim.to(CUDA), rel.to(CUDA)).cpu()
    assert torch.equal(gpu, cpu)
