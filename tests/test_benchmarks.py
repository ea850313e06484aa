"""Benchmark scripts run at toy size: they must work and compare like with like, not be fast.
No timing is asserted (the machine is shared); what each script compares is checked for
correctness."""

import logging
import math
import sys
from pathlib import Path

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import cross_machine  # noqa: E402
import data_path  # noqa: E402
import eval_map  # noqa: E402
import flops  # noqa: E402
import gpu_train_step  # noqa: E402
import metric_steps  # noqa: E402
import op_trace  # noqa: E402
import portable_cost  # noqa: E402
import real_scale  # noqa: E402
import seed_spread  # noqa: E402
import train_step  # noqa: E402


def test_train_step_benchmark_runs_at_toy_size():
    result = train_step.main(["--size", "32", "--batch", "2", "--repeats", "1"])
    assert set(result["seconds_per_step"]) == {"contiguous", "channels_last", "contiguous_no_cls_branch"}
    assert all(v > 0 for v in result["seconds_per_step"].values())
    assert result["speedup_vs_contiguous"]["contiguous"] == 1.0


def test_eval_map_benchmark_ours_equals_reference_loop():
    # --reference-queries 0: the reference runs on every query, so every AP is compared.
    result = eval_map.main(["--scale", "0.03", "--dim", "16", "--reference-queries", "0", "--repeats", "1"])
    for name, d in result["datasets"].items():
        assert d["reference_extrapolated_from"] is None
        assert d["compared_queries"] == d["queries"] > 0
        assert d["max_abs_diff"] <= 1e-9, name
        assert d["candidates_per_type"] == [4 * q for q in d["queries_per_type"]]
        assert 0 < d["map_query_weighted"] <= 1
        assert d["ours_seconds"] > 0 and d["reference_seconds"] > 0
        assert math.isclose(d["speedup"], d["reference_seconds"] / d["ours_seconds"])
        assert {"peak_rss_increase_mb", "tracemalloc_peak_mb"} <= set(d["ours_memory"])
    assert len(result["datasets"]["fashionai"]["queries_per_type"]) == 8
    assert len(result["datasets"]["deepfashion"]["queries_per_type"]) == 5
    assert result["total"]["max_abs_diff"] <= 1e-9


def test_eval_map_extrapolates_the_reference_from_a_subset():
    result = eval_map.main(["--datasets", "fashionai", "--scale", "0.05", "--dim", "8",
                            "--reference-queries", "40", "--repeats", "1"])
    d = result["datasets"]["fashionai"]
    assert d["reference_extrapolated_from"]["of"] == d["queries"]
    assert d["compared_queries"] == d["reference_extrapolated_from"]["queries_timed"] < d["queries"]
    assert d["max_abs_diff"] <= 1e-9


# The cache path's pixels against the decode path's (both without the flip), in 0-255 levels.
# They differ by design: the cache decodes with libjpeg's DCT downscaling (draft) and resizes
# with its own rounding of the resized size, and the jpeg format re-encodes at quality 90.
MEAN_LEVELS, P99_LEVELS = 3.0, 12.0


def test_data_path_benchmark_paths_agree():
    result = data_path.main(["--images", "4", "--repeats", "1", "--feed-batches", "2", "--feed-passes", "1"])
    paths = {"decode", "cache_jpeg", "cache_array", "cache_jpeg_batch", "cache_array_batch"}
    assert set(result["images_per_s_per_core"]) == paths | {"normalise_cpu"}
    assert all(v > 0 for v in result["images_per_s_per_core"].values())
    assert set(result["tensor_shapes"]) == paths
    assert all(shape == [3, 224, 224] for shape in result["tensor_shapes"].values())
    for fmt, d in result["pixels_vs_decode"].items():
        assert d["shape"] == [3, 224, 224]
        assert d["mean_abs_diff_levels"] <= MEAN_LEVELS, fmt
        assert d["p99_abs_diff_levels"] <= P99_LEVELS, fmt
    assert set(result["feeds"]) == {f"host_{fmt}_workers_{w}" for fmt in ("jpeg", "array") for w in (0, 2)}
    for feed in result["feeds"].values():
        assert feed["batch_shape"] == [48, 3, 224, 224] and feed["images_per_s"] > 0
    assert set(result["cores_to_feed_anchor"]) == set(data_path.ANCHORS)


def test_gpu_train_step_benchmark_runs_on_cpu_and_reports_every_field():
    args = ["--device", "cpu", "--size", "16", "--batch", "1", "--warmup", "1", "--steps", "1", "--repeats", "1",
            "--arch", "resnet18"]
    result = gpu_train_step.main(args)
    assert set(result["runs"]) == {"eager_fp32_nchw", "eager_bf16_cl", "plain_resnet18"}  # no graphs on a CPU
    for run in result["runs"].values():
        assert run["images_per_step"] == 3 and run["images_per_s"] > 0
    assert result["over_eager_bf16_cl"]["eager_bf16_cl"] == 1.0
    first, again = (gpu_train_step.main([*args, "--digest", "2"])["digest"] for _ in range(2))
    assert first == again and len(first["weights_sha256"]) == 64  # a rerun on this CPU is bit-identical


def test_flops_benchmark_counts_the_cells_it_is_given():
    result = flops.main(["--size", "32", "--cells", "fashionai-agman", "fashionai-csn"])
    cells = result["cells"]
    assert set(cells) == {"fashionai-agman", "fashionai-csn"}
    # AG-MAN runs all of ResNet-50 (block #4 in its classification branch) plus the hierarchical
    # feature and the attention; CSN stops at block #3 (an FC over the pooled F3).
    assert cells["fashionai-agman"]["vs_resnet50"] > cells["fashionai-csn"]["vs_resnet50"] > 0
    assert all(c["image_passes"] == 100_000 * 3 * 50 for c in cells.values())  # the paper profile
    assert result["matrix"]["image_passes"] == 2 * 15_000_000


def test_portable_cost_benchmark_runs_every_case_in_a_process_of_its_own():
    result = portable_cost.main(["--size", "32", "--batch", "2", "--steps", "1", "--rounds", "1"])
    cases = {f"{fmt}/{mode}" for fmt in ("contiguous", "channels_last") for mode in ("default", "portable")}
    assert set(result["seconds_per_step"]) == set(result["runs"]) == cases
    for fmt in ("contiguous", "channels_last"):
        portable, default = result["runs"][f"{fmt}/portable"][0], result["runs"][f"{fmt}/default"][0]
        assert portable["aten_cpu_capability"] == "AVX2" and portable["threads"] == 2
        assert result["portable_over_default"][fmt] == portable["seconds_per_step"] / default["seconds_per_step"]


def test_portable_cost_runs_a_case_per_convolution_code_asked_for(monkeypatch):
    args = portable_cost.argparse.Namespace(size=32, batch=2, steps=1)
    aten = portable_cost.run_case(args, "contiguous", True, "aten")  # a real process: the switches hold there
    assert (aten["mkldnn"], aten["nnpack"], aten["aten_cpu_capability"]) == (False, False, "AVX2")
    seconds = {"default": 1.0, "portable": 2.0, "portable_nnpack": 3.0, "portable_aten": 5.0}
    monkeypatch.setattr(portable_cost, "run_case", lambda args, fmt, on, conv="onednn": {
        "seconds_per_step": seconds[portable_cost.mode(on, conv)], "weights_sha256": conv})
    result = portable_cost.main(["--rounds", "1", "--conv", "aten", "nnpack", "onednn"])
    assert set(result["runs"]) == {f"{fmt}/{m}" for fmt in ("contiguous", "channels_last") for m in seconds}
    assert result["over_portable"]["channels_last/portable_aten"] == 2.5
    assert result["over_default"]["contiguous/portable_nnpack"] == 3.0
    assert result["portable_over_default"] == {"contiguous": 2.0, "channels_last": 2.0}
    assert result["changes_the_portable_weights"]["contiguous/portable_aten"] is True


def test_cross_machine_reports_every_field_that_differs_from_a_reference():
    cells = {"zappos-agman": {"metrics": {"accuracy": 0.5, "loss": 0.25}, "best_weights_sha256": "a",
                              "data_sha256": "d"}}
    reference = {"cells": {"zappos-agman": {"metrics": {"accuracy": 0.5, "loss": 0.25}, "best_weights_sha256": "a",
                                            "data_sha256": "d"}}}
    assert cross_machine.differences(cells, reference) == []
    reference["cells"]["zappos-agman"]["metrics"]["loss"] = 0.25000000000000006  # one bit
    reference["cells"]["zappos-agman"]["best_weights_sha256"] = "b"
    assert cross_machine.differences(cells, reference) == [
        "zappos-agman: best_weights_sha256 differs",
        "zappos-agman: loss 0.25000000000000006 there, 0.25 here (|difference| 5.55e-17)"]
    assert cross_machine.differences(cells, {"cells": {}}) == ["zappos-agman: not in the reference"]


def test_cross_machine_names_the_nested_metric_that_differs():
    ours = {"metrics": {"per_condition": {"class": {"loss": 0.5, "n": 20}, "heel": {"loss": 0.25, "n": 20}}},
            "best_weights_sha256": "a", "data_sha256": "d"}
    theirs = {"metrics": {"per_condition": {"class": {"loss": 0.5, "n": 20}, "heel": {"loss": 0.75, "n": 20}}},
              "best_weights_sha256": "a", "data_sha256": "d"}
    assert cross_machine.differences({"zappos-agman": ours}, {"cells": {"zappos-agman": theirs}}) == [
        "zappos-agman: per_condition/heel/loss 0.75 there, 0.25 here (|difference| 0.5)"]


def test_cross_machine_says_when_a_reference_was_made_with_other_code():
    ours = {"commit": "b" * 40, "uncommitted_changes": False, "sha256": "1" * 64}
    same = cross_machine.reference_code("x.json", {"code": {"commit": "a" * 40, "sha256": "1" * 64}}, ours)
    other = cross_machine.reference_code("x.json", {"code": {"commit": "a" * 40, "sha256": "2" * 64}}, ours)
    unknown = cross_machine.reference_code("x.json", {}, ours)
    assert same["same_code"] is True and other["same_code"] is False and unknown["same_code"] is None
    assert cross_machine.code_line(same).startswith("made with this code (aaaaaaa)")
    assert cross_machine.code_line(other).startswith("made with OTHER code (aaaaaaa)")
    assert cross_machine.code_line(unknown) == "made with code not recorded; whether it is this code is unknown here"
    # The references written before the files recorded it: the commit comes from MADE_WITH.
    intel = cross_machine.reference_code("intel-xeon-processor-family6-model167.json", {}, ours)
    assert intel["commit"].startswith("ce622d6") and not intel["recorded_in_file"]


def test_cross_machine_names_a_reference_by_cpu_model_family_and_model():
    cpu = {"model_name": "Intel(R) Xeon(R) CPU @ 2.20GHz", "cpu_family": "6", "model": "85"}
    assert cross_machine.slug(cpu) == "intel-xeon-cpu-2-20ghz-family6-model85"


class _Plant(TorchDispatchMode):
    """Moves one element of operation ``at``'s output by one ulp, as another CPU's kernel might."""

    def __init__(self, at: int | None):
        super().__init__()
        self.at, self.seen = at, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if self.seen == self.at:
            first = (0,) * out.dim()
            out[first] = torch.nextafter(out[first], torch.tensor(math.inf))
        self.seen += 1
        return out


def _traced_steps(plant_at: int | None = None, planted_input: bool = False) -> list[list]:
    """Two training steps of a small conv net, traced; one operation's output moved by one ulp
    (``plant_at``), or one element of the images (``planted_input``)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(144, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    images = torch.randn(16, 3, 8, 8)
    if planted_input:
        images[0, 0, 0, 0] = torch.nextafter(images[0, 0, 0, 0], torch.tensor(math.inf))
    tracer = op_trace.Tracer()
    with _Plant(plant_at), tracer:  # the tracer inside: it records the moved output
        for _ in range(2):
            tracer.step += 1
            loss = model(images).square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return tracer.ops


def test_op_trace_reports_the_first_operation_whose_output_differs():
    clean = _traced_steps()
    assert op_trace.first_difference(clean, _traced_steps()) is None  # a rerun here is bit-identical
    k = next(i for i, op in enumerate(clean) if op[0] == 2 and op[1] == "aten.addmm.default")
    diff = op_trace.first_difference(clean, _traced_steps(plant_at=k))
    assert diff is not None, "the planted difference was not reported"
    assert diff["index"] == k and diff["step"] == 2 and diff["name"] == "aten.addmm.default"
    assert diff["kind"] == "outputs" and diff["outputs_equal"] == [False]
    assert diff["inputs_equal"] == [True, True, True] and diff["differing_inputs_made_by"] == {}


def test_op_trace_says_where_a_differing_input_came_from():
    diff = op_trace.first_difference(_traced_steps(), _traced_steps(planted_input=True))
    assert diff["name"] == "aten.convolution.default" and diff["step"] == 1
    assert diff["inputs_equal"] == [False, True, True]
    assert diff["differing_inputs_made_by"] == {0: None}  # the images: made before the trace


def test_op_trace_reports_another_operation_and_a_shorter_trace():
    a = [[1, "aten.mm.default", ["f32[2,2]:aa"], ["x", "y"]], [1, "aten.add.Tensor", ["f32[2,2]:bb"], ["aa", "z"]]]
    b = [a[0], [1, "aten.sub.Tensor", ["f32[2,2]:bb"], ["aa", "z"]]]
    assert op_trace.first_difference(a, b) == {"index": 1, "step": 1, "name": "aten.add.Tensor",
                                               "other_name": "aten.sub.Tensor", "kind": "another operation"}
    assert op_trace.first_difference(a, a[:1]) == {"index": 1, "kind": "length", "lengths": [2, 1]}


def test_op_trace_gives_each_operation_the_library_lines_printed_between_its_marks():
    log = "\n".join([
        "onednn_verbose,v1,info,cpu,isa:Intel AVX2",
        "@@op 0",
        "MKL_VERBOSE oneMKL 2024.0 Update 2 Product build 20240605 for Intel(R) 64 architecture",
        "MKL_VERBOSE SGEMM(T,N,32,48,32,0x7ffd12,0x556e66,32) 4.19ms CNR:COMPATIBLE Dyn:0 FastMM:1 TID:0  NThr:2",
        "@@op 1",
        "some other output",
        "@@op 2",
        "onednn_verbose,v1,primitive,info,template:operation,engine,primitive",
        "onednn_verbose,v1,primitive,exec,cpu,convolution,jit:avx2,forward_training,mb48_ic3oc64,0.215088",
    ])
    header, per_op = op_trace.library_lines(log, 3)
    assert header == ["onednn_verbose,v1,info,cpu,isa:Intel AVX2",
                      "MKL_VERBOSE oneMKL 2024.0 Update 2 Product build 20240605 for Intel(R) 64 architecture",
                      "onednn_verbose,v1,primitive,info,template:operation,engine,primitive"]
    assert per_op == {0: ["MKL_VERBOSE SGEMM(T,N,32,48,32,0x,0x,32) CNR:COMPATIBLE Dyn:0 FastMM:1 TID:0  NThr:2"],
                      2: ["onednn_verbose,v1,primitive,exec,cpu,convolution,jit:avx2,forward_training,mb48_ic3oc64"]}
    ops = [[1, "aten.mm.default", [], [], per_op[0]], [1, "aten.relu.default", [], []],
           [1, "aten.convolution.default", [], [], per_op[2]]]
    assert op_trace.summary(ops) == {"onednn": {"aten.convolution.default": 1}, "mkl": {"aten.mm.default": 1}}
    assert op_trace.runs(["a", "a", "b", "a", "c"]) == ["a [x3]", "b", "c"]


def test_metric_steps_finds_the_smallest_ap_move_of_one_adjacent_swap():
    from fractions import Fraction
    from itertools import permutations

    def ap(ranking):  # 1 = relevant
        hits = [i + 1 for i, rel in enumerate(ranking) if rel]
        return sum(Fraction(j + 1, pos) for j, pos in enumerate(hits)) / len(hits)

    for n in range(2, 7):
        for relevant in range(1, n + 1):
            moves = set()
            for ranking in set(permutations([1] * relevant + [0] * (n - relevant))):
                for k in range(n - 1):
                    swapped = list(ranking)
                    swapped[k], swapped[k + 1] = swapped[k + 1], swapped[k]
                    moves.add(abs(ap(ranking) - ap(swapped)))
            moves.discard(0)
            assert metric_steps.smallest_swap(n, relevant) == (min(moves) if moves else None), (n, relevant)


def test_real_scale_reads_the_cache_loop_rate_from_the_cache_stage_log(demo_root, demo_table, tmp_path, caplog):
    from agman.data.prepared import PreparedData, cache_prepared

    table, names = demo_table
    with caplog.at_level(logging.INFO, logger="agman.data.prepared"):
        cache_prepared(PreparedData(table, names, "retrieval"), demo_root, tmp_path / "cache", 16, fmt="jpeg")
    seconds, rate = real_scale.cache_loop(caplog.text)
    images = table["path"].nunique()
    assert rate > 0 and abs(rate * seconds - images) <= 0.05 * rate + 1  # seconds are logged to 0.1 s (0.0 when quick)
    with pytest.raises(SystemExit, match="no 'cached N images"):
        real_scale.cache_loop("cached 10 images at 16 px as jpeg: 0.1 MB")


def test_seed_spread_compares_agman_with_each_baseline_seed_by_seed():
    methods = {"agman": [0.50, 0.40, 0.60], "csn": [0.45, 0.42, 0.50], "asenet_v2": [0.30, 0.30, 0.30],
               "attnfashion": [0.20, 0.50, 0.10]}
    [s] = seed_spread.summarise({"fashionai": methods}).values()
    assert s["metric"] == "map" and s["best_baseline_by_mean"] == "csn"  # means 0.4567, 0.30, 0.2667
    csn = s["agman_minus"]["csn"]
    assert csn["per_seed"] == pytest.approx([0.05, -0.02, 0.10])
    assert csn["mean"] == pytest.approx(0.13 / 3) and csn["seeds_agman_ahead"] == 2
    assert csn["std"] == pytest.approx(math.sqrt(((0.05 - 0.13 / 3) ** 2 + (-0.02 - 0.13 / 3) ** 2
                                                  + (0.10 - 0.13 / 3) ** 2) / 2))
    assert s["methods"]["attnfashion"]["min"] == 0.10 and s["methods"]["attnfashion"]["max"] == 0.50
    assert s["agman_first_in_seeds"] == 2  # seed 1: attnfashion 0.50 and csn 0.42 beat 0.40
