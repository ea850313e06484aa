"""A tiny CPU training run on the demo data: resume equivalence, NaN guard, checkpoints."""

import dataclasses

import numpy as np
import pytest
import torch

from agman.config import Config
from agman.data.images import draw_flips
from agman.data.triplets import sample_triplets
from agman.training import loop as loop_module
from agman.training import step as step_module
from agman.training.checkpoint import load_checkpoint
from agman.training.loop import TrainPaths, train
from tests.helpers import ci_config, train_stopped_at_second_validation


def tiny_config(root, epochs=2) -> Config:
    return ci_config("demo_fashionai", root, triplets={"per_epoch": 24}, model={"embed_dim": 32},
                     train={"epochs": epochs, "batch_size": 8, "lr": 1e-3, "lr_step": 1}, eval={"batch_size": 32})


def make_paths(tmp_path, data, cfg) -> TrainPaths:
    triplet_dir = tmp_path / "triplets"
    triplet_dir.mkdir(parents=True)
    for epoch in range(cfg.train.epochs):
        triplets = sample_triplets(data.table, data.attributes, 24, seed=0, epoch=epoch)
        np.save(triplet_dir / f"epoch_{epoch:03d}.npy", triplets)
    return TrainPaths(triplet_dir=triplet_dir, out_dir=tmp_path / "run", curves=tmp_path / "curves.csv")


def test_interrupted_run_resumes_to_the_same_result(tmp_path, demo_root, demo_data, monkeypatch):
    cfg = tiny_config(demo_root, epochs=3)

    straight = make_paths(tmp_path / "a", demo_data, cfg)
    full = train(cfg, demo_data, straight)

    resumed = make_paths(tmp_path / "b", demo_data, cfg)
    train_stopped_at_second_validation(monkeypatch, cfg, demo_data, resumed)
    assert load_checkpoint(resumed.out_dir / "last.pt")["state"]["epoch"] == 1
    second = train(cfg, demo_data, resumed)

    assert second.epoch == full.epoch == 3
    assert [r["loss"] for r in second.history] == [r["loss"] for r in full.history]
    assert [r["val_map"] for r in second.history] == [r["val_map"] for r in full.history]
    a = load_checkpoint(straight.out_dir / "last.pt")["model"]
    b = load_checkpoint(resumed.out_dir / "last.pt")["model"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


def test_changed_config_does_not_resume(tmp_path, demo_root, demo_data, caplog):
    cfg = tiny_config(demo_root, epochs=1)
    paths = make_paths(tmp_path, demo_data, cfg)
    train(cfg, demo_data, paths)
    other = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, lr=5e-4))
    with caplog.at_level("INFO"):
        state = train(other, demo_data, paths)
    assert "training from scratch" in caplog.text and state.epoch == 1
    best = load_checkpoint(paths.out_dir / "best.pt")
    assert best["config"]["train"]["lr"] == 5e-4 and best["attributes"] == demo_data.attributes
    assert paths.curves.read_text().splitlines()[0].startswith("epoch,loss,triplet,cls")


@pytest.mark.parametrize("every, steps", [(1, 2), (2, 2), (50, 3)])
def test_non_finite_loss_names_epoch_and_batch(tmp_path, demo_root, demo_data, monkeypatch, every, steps):
    """A NaN at batch 2 stops the run naming batch 2, at the first read of the losses after it:
    after batch 2 when they are read every batch or every 2, at the epoch's end (batch 3) otherwise."""
    cfg = tiny_config(demo_root, epochs=1)
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, check_every=every))
    paths = make_paths(tmp_path, demo_data, cfg)
    calls = {"n": 0}
    real = step_module.triplet_ranking_loss

    def nan_on_second_batch(*args, **kwargs):
        calls["n"] += 1
        value = real(*args, **kwargs)
        return value * float("nan") if calls["n"] == 2 else value

    monkeypatch.setattr(step_module, "triplet_ranking_loss", nan_on_second_batch)
    with pytest.raises(FloatingPointError, match=r"at epoch 1, batch 2: loss=nan, triplet=nan, cls=\d"):
        train(cfg, demo_data, paths)
    assert calls["n"] == steps


def test_missing_triplet_file_is_named(tmp_path, demo_root, demo_data):
    cfg = tiny_config(demo_root, epochs=1)
    paths = TrainPaths(triplet_dir=tmp_path / "none", out_dir=tmp_path / "run", curves=tmp_path / "c.csv")
    with pytest.raises(FileNotFoundError, match="epoch_000.npy"):
        train(cfg, demo_data, paths)


@pytest.mark.parametrize("name", ["agman", "csn", "asenet_v2", "attnfashion"])
def test_every_model_trains_one_epoch(tmp_path, demo_data, name):
    cfg = tiny_config("unused", epochs=1)
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, name=name, cls_loss=name == "agman"))
    state = train(cfg, demo_data, make_paths(tmp_path, demo_data, cfg))
    record = state.history[0]
    assert np.isfinite(record["loss"]) and 0.0 <= record["val_map"] <= 1.0
    assert (record["cls"] > 0) == (name == "agman")  # only AG-MAN has the classification branch
    assert (record["penalty"] > 0) == (name == "csn")  # only CSN has a regulariser of its own


def test_a_finished_run_is_reused_until_the_training_code_changes(tmp_path, demo_data, monkeypatch, caplog):
    cfg = tiny_config("unused", epochs=1)
    paths = make_paths(tmp_path, demo_data, cfg)
    first = train(cfg, demo_data, paths)
    weights = load_checkpoint(paths.out_dir / "best.pt")["model"]

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run of the same config, data and code must not train again")

    curves = paths.curves.read_text()
    paths.curves.unlink()  # as DVC does before it runs the stage again
    monkeypatch.setattr(loop_module, "_train_epoch", no_training)
    with caplog.at_level("INFO"):
        again = train(cfg, demo_data, paths)
    assert "reusing it" in caplog.text and again.best_score == first.best_score
    assert paths.curves.read_text() == curves  # the reused run's outputs are all there again
    assert all(torch.equal(weights[k], v) for k, v in load_checkpoint(paths.out_dir / "best.pt")["model"].items())

    monkeypatch.setattr(demo_data.cache, "sha256", "re-rendered images")
    with pytest.raises(AssertionError, match="must not train again"):  # same table, other pixels: stale
        train(cfg, demo_data, paths)
    monkeypatch.undo()
    monkeypatch.setattr(loop_module, "_train_epoch", no_training)
    monkeypatch.setattr(loop_module, "code_digest", lambda: "edited model code")
    with pytest.raises(AssertionError, match="must not train again"):  # stale: it trains from scratch
        train(cfg, demo_data, paths)
    monkeypatch.undo()
    np.save(paths.triplet_dir / "epoch_000.npy", sample_triplets(demo_data.table, demo_data.attributes, 24, 9, 0))
    monkeypatch.setattr(loop_module, "_train_epoch", no_training)
    with pytest.raises(AssertionError, match="must not train again"):  # new triplet files: stale too
        train(cfg, demo_data, paths)


def test_a_resumed_run_trains_only_the_epochs_after_last_pt(tmp_path, demo_root, demo_data, monkeypatch):
    cfg = tiny_config(demo_root, epochs=3)
    paths = make_paths(tmp_path, demo_data, cfg)
    real_epoch = loop_module._train_epoch
    trained: list[int] = []

    def counting(cfg, run, data, paths, epoch):
        trained.append(epoch + 1)
        if epoch == 1:
            raise KeyboardInterrupt("simulated interruption in epoch 2")
        return real_epoch(cfg, run, data, paths, epoch)

    monkeypatch.setattr(loop_module, "_train_epoch", counting)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, demo_data, paths)
    assert trained == [1, 2] and load_checkpoint(paths.last)["state"]["epoch"] == 1
    trained.clear()
    monkeypatch.setattr(loop_module, "_train_epoch", lambda *a: trained.append(a[4] + 1) or real_epoch(*a))
    state = train(cfg, demo_data, paths)
    assert trained == [2, 3]  # epoch 1 came from last.pt, not from training it again
    assert [r["epoch"] for r in state.history] == [1, 2, 3]


def test_best_pt_holds_the_epoch_of_the_best_validation_score(tmp_path, demo_root, demo_data, monkeypatch):
    cfg = tiny_config(demo_root, epochs=3)
    paths = make_paths(tmp_path, demo_data, cfg)
    real_evaluate = loop_module.evaluate
    scores = iter([0.3, 0.9, 0.5])
    weights_at: dict[int, dict] = {}

    def scripted(model, data, split, cfg, device, feed):
        out = real_evaluate(model, data, split, cfg, device, feed)
        epoch = len(weights_at) + 1
        weights_at[epoch] = {k: v.clone() for k, v in model.state_dict().items()}
        score = next(scores)
        return {**out, "map": score, "score": score}

    monkeypatch.setattr(loop_module, "evaluate", scripted)
    state = train(cfg, demo_data, paths)
    assert (state.best_epoch, state.best_score) == (2, 0.9)
    best = load_checkpoint(paths.best)
    assert best["epoch"] == 2 and best["val"]["score"] == 0.9
    for key, value in best["model"].items():
        assert torch.equal(value, weights_at[2][key]), key
    assert any(not torch.equal(weights_at[2][k], weights_at[3][k]) for k in weights_at[3])  # epoch 3 differs


@pytest.mark.parametrize("fingerprint, epoch, best_exists, expected", [
    ("same", 3, True, "reuse"),  # finished, best.pt there
    ("same", 3, False, "fresh"),  # finished but best.pt gone: nothing to evaluate
    ("same", 2, True, "resume"),
    ("same", 0, False, "resume"),
    ("other", 2, True, "fresh"),  # another config, data or code
    ("other", 3, True, "fresh"),
])
def test_last_pt_is_reused_resumed_or_ignored(fingerprint, epoch, best_exists, expected):
    last = {"fingerprint": fingerprint, "state": {"epoch": epoch}}
    assert loop_module.start_from(last, "same", 3, best_exists) == expected


def test_only_a_strictly_higher_score_replaces_best_pt():
    assert loop_module.improves(0.9, 0.3) and not loop_module.improves(0.5, 0.9)
    assert not loop_module.improves(0.9, 0.9)  # a tie keeps the earlier epoch
    assert loop_module.improves(0.0, float("-inf"))  # the first epoch always writes best.pt


@pytest.mark.parametrize("feed, workers", [("host", 2), ("device", 0)])
def test_the_pixels_a_run_trains_on_do_not_depend_on_the_feed(tmp_path, demo_data, feed, workers):
    """The same weights, bit for bit, whether DataLoader workers read the batches or the whole
    cache is held on the device: the feed moves pixels, the flips are the run's."""
    def weights_after(folder, feed, workers):
        cfg = tiny_config("unused", epochs=1)
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, feed=feed, num_workers=workers))
        train(cfg, demo_data, make_paths(folder, demo_data, cfg))
        return load_checkpoint(folder / "run" / "last.pt")["model"]

    reference = weights_after(tmp_path / "main", "host", 0)
    other = weights_after(tmp_path / "other", feed, workers)
    for key in reference:
        assert torch.equal(reference[key], other[key]), key



def test_each_step_gets_its_triplets_images_with_their_own_flips_and_attributes(tmp_path, demo_data, monkeypatch):
    """Batch k of an epoch: the anchors, then the positives, then the negatives of triplet rows
    [kB, (k+1)B), each with the coin draw_flips gave that image and its triplet's attribute."""
    cfg = tiny_config("unused", epochs=1)
    paths = make_paths(tmp_path, demo_data, cfg)
    seen = []
    real = step_module.TrainStep.__call__

    def recording(self, images, flips, attrs, scale=1.0):
        seen.append((images.clone(), flips.clone(), attrs.clone()))
        return real(self, images, flips, attrs, scale)

    monkeypatch.setattr(step_module.TrainStep, "__call__", recording)
    train(cfg, demo_data, paths)
    triplets = np.load(paths.triplet_dir / "epoch_000.npy")
    flips = draw_flips(cfg.train.seed, 0, len(triplets))
    assert len(seen) == 3
    for k, (images, got_flips, attrs) in enumerate(seen):
        rows = triplets[8 * k:8 * (k + 1)]
        assert torch.equal(images, demo_data.cache.batch(demo_data.entries[rows[:, :3]].T.reshape(-1)))
        assert torch.equal(got_flips, torch.from_numpy(flips[8 * k:8 * (k + 1)].T.reshape(-1).copy()))
        assert attrs.tolist() == rows[:, 3].tolist() * 3
