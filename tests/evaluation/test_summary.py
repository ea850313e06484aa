"""What the evaluation hands on: the task's headline score, flat metric names, the mean over seeds."""

import types

import pytest
import torch

from agman import evaluation
from agman.evaluation.retrieval import EmbedSettings
from tests.helpers import ci_config

CPU = torch.device("cpu")


def test_mean_over_seeds_averages_every_numeric_leaf_and_keeps_constants():
    per_seed = [{"map": 0.2, "n_queries": 64, "map_per_attribute": {"a": 0.1, "b": 0.5}, "best_epoch": 3},
                {"map": 0.4, "n_queries": 64, "map_per_attribute": {"a": 0.3, "b": 0.5}, "best_epoch": 2}]
    out = evaluation.mean_over_seeds(per_seed)
    assert out.pop("map_per_attribute") == pytest.approx({"a": 0.2, "b": 0.5})
    assert out == pytest.approx({"map": 0.3, "n_queries": 64, "best_epoch": 2.5, "n_seeds": 2})
    assert isinstance(out["n_queries"], int)  # equal values are kept as they are, not averaged
    assert evaluation.mean_over_seeds(per_seed[:1])["n_seeds"] == 1


def test_flat_metrics_names_every_scalar_and_skips_counts_and_rows():
    metrics = {"map": 0.5, "map_macro": 0.4, "n_queries": 10, "per_item": object(),
               "map_per_attribute": {"texture": 0.7, "shape": 0.3},
               "per_condition": {"heel": {"accuracy": 0.9, "loss": 0.1, "n_triplets": 5}}}
    assert evaluation.flat_metrics(metrics, "val") == {
        "val_map": 0.5, "val_map_macro": 0.4, "val_map_texture": 0.7, "val_map_shape": 0.3,
        "val_accuracy_heel": 0.9, "val_loss_heel": 0.1}


@pytest.fixture
def calls(monkeypatch) -> list:
    """Both tasks' evaluations replaced by a stub that records its arguments (MAP 0.25, accuracy 0.75)."""
    recorded = []

    def fake(*args, **kwargs):
        recorded.append((args, kwargs))
        return {"map": 0.25, "accuracy": 0.75}

    monkeypatch.setattr(evaluation, "evaluate_retrieval", fake)
    monkeypatch.setattr(evaluation, "evaluate_triplets", fake)
    return recorded


def settings(**eval_train) -> EmbedSettings:
    return EmbedSettings(eval_train["batch_size"], eval_train["amp_dtype"], torch.contiguous_format)


@pytest.mark.parametrize("task, headline", [("retrieval", "map"), ("triplets", "accuracy")])
def test_evaluate_scores_a_split_by_its_tasks_headline_with_the_configs_settings(task, headline, calls):
    cfg = ci_config(eval={"batch_size": 7, "chunk_size": 9}, train={"amp_dtype": "none"})
    data = types.SimpleNamespace(task=task, table="T", cache="C", attributes=["a"], entries="E",
                                 triplets={"valid": "V"})
    out = evaluation.evaluate("model", data, "valid", cfg, CPU, feed="F")
    assert out["score"] == out[headline] == {"map": 0.25, "accuracy": 0.75}[headline]
    args, kwargs = calls[0]
    assert kwargs["settings"] == settings(batch_size=7, amp_dtype="none") and "F" in args
    if task == "retrieval":
        assert args == ("model", "T", "F", "valid", ["a"]) and kwargs["chunk_size"] == 9
    else:
        assert args[:3] == ("model", "V", "E") and kwargs["margin"] == cfg.loss.margin
        with pytest.raises(KeyError, match="no test triplets"):
            evaluation.evaluate("model", data, "test", cfg, CPU, feed="F")


@pytest.mark.parametrize("task", ["retrieval", "triplets"])
def test_evaluate_hands_the_task_its_splits_data_and_every_setting_in_place(task, calls, monkeypatch):
    # Every setting differs from its default and from the others, so a dropped or swapped one shows.
    cfg = ci_config(eval={"batch_size": 7, "chunk_size": 9}, data={"num_workers": 3, "feed": "device"},
                    loss={"margin": 0.35}, train={"amp_dtype": "bfloat16", "memory_format": "channels_last"})
    built = []
    monkeypatch.setattr(evaluation, "build_feed", lambda *args: built.append(args) or "F")
    data = types.SimpleNamespace(task=task, table="T", cache="C", attributes=["heel", "toe"], entries="E",
                                 triplets={"valid": "V", "test": "W"})
    evaluation.evaluate("model", data, "test", cfg, CPU)
    assert built == [("device", "C", CPU, 3)]  # no feed given: data.feed's
    expected = EmbedSettings(7, "bfloat16", torch.channels_last)
    if task == "retrieval":
        assert calls == [(("model", "T", "F", "test", ["heel", "toe"]), {"settings": expected, "chunk_size": 9})]
    else:
        assert calls == [(("model", "W", "E", "F", ["heel", "toe"]),
                          {"margin": 0.35, "settings": expected, "desc": "embed test"})]
