"""Where do two CPUs' runs first part? Records every ATen operation of the first training steps
of the ci profile's ``fashionai-agman`` cell under ``train.portable``, in execution order: its
name, a SHA-256 of each output (with shape and dtype) and of each tensor input, and the oneDNN
primitives and MKL calls it ran (their verbose logs, which name the kernel each picked). Two
such traces, from two machines, are compared operation by operation:

    .venv/bin/python benchmarks/op_trace.py record --out trace.json            # this machine's
    .venv/bin/python benchmarks/op_trace.py compare theirs.json trace.json     # the first operation that differs

``record`` runs the slot's data stages in a temporary copy of the code, as
``benchmarks/cross_machine.py`` does, then the cell's training in a process of its own (the
portable setting holds only from a process's start) until ``--steps`` steps have run. The ci
cell has two steps in all, so the default traces its whole training. ``--conv`` picks the code
that runs the convolutions (``benchmarks/cross_machine.py``'s ``CONV``); under each operation the
trace also lists the backend kernels ATen ran for it (``aten::mkldnn_convolution``,
``aten::_nnpack_spatial_convolution``, ``aten::_slow_conv2d_forward``), from the profiler.
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import torch
from common import ROOT  # first: puts the repo root first on sys.path
from cross_machine import CONV, code_state, cpu_caches, cpu_id, prepare_slot, project_copy, set_conv, stage_env
from torch.utils._python_dispatch import TorchDispatchMode, _disable_current_modes
from torch.utils._pytree import tree_leaves

CELL, SLOT = "fashionai-agman", "fashionai"
#: Hex digits kept of each SHA-256: 64 bits tell two tensors apart as well as 256 here, at a quarter the size.
DIGEST_CHARS = 16
MARK = "@@op "
#: Operations whose output is memory not yet written: no digest (it is NaN under deterministic
#: algorithms, whatever was there otherwise).
UNWRITTEN = {"aten.empty.memory_format", "aten.empty_like.default", "aten.empty_strided.default",
             "aten.new_empty.default", "aten.new_empty_strided.default"}
_DTYPES = {torch.float32: "f32", torch.float64: "f64", torch.float16: "f16", torch.bfloat16: "bf16",
           torch.int64: "i64", torch.int32: "i32", torch.uint8: "u8", torch.bool: "b8"}


def digest(t: torch.Tensor) -> str:
    """SHA-256 of a tensor's values in row-major order (its memory layout left out)."""
    if t.layout != torch.strided or t.device.type == "meta":
        return "-"
    data = t.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
    return hashlib.sha256(data.numpy().tobytes()).hexdigest()[:DIGEST_CHARS]


def describe(t: torch.Tensor, values: bool = True) -> str:
    """``f32[48,64,16,16]:<digest>`` (``:-`` without ``values``)."""
    return f"{_DTYPES.get(t.dtype, str(t.dtype))}[{','.join(map(str, t.shape))}]:{digest(t) if values else '-'}"


#: The profiler's names of the kernels that tell which backend ran an operation.
BACKEND = re.compile(r"mkldnn|nnpack|slow_conv|thnn")


class Tracer(TorchDispatchMode):
    """Records each ATen operation that reaches the dispatcher as ``[step, name, outputs, inputs]``.

    With ``marks``, writes ``@@op <index>`` to file descriptor 1 before each operation, after
    flushing C's stdio, so that the verbose lines oneDNN and MKL print there fall between the
    marks of the operation that ran them, and runs each operation in a profiler range of that
    name, so that a profiler can tell the kernels it ran.
    """

    def __init__(self, marks: bool = False):
        super().__init__()
        self.ops: list[list] = []
        self.step = 0
        self.marks = marks
        self._libc = ctypes.CDLL(None) if marks else None

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        with _disable_current_modes():  # the digests' own operations reach no other mode
            inputs = [digest(t) for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        if self.marks:
            self._libc.fflush(None)
            os.write(1, f"{MARK}{len(self.ops)}\n".encode())
            with torch.profiler.record_function(f"{MARK}{len(self.ops)}"):
                out = func(*args, **kwargs)
            self._libc.fflush(None)
        else:
            out = func(*args, **kwargs)
        name = str(func)
        with _disable_current_modes():
            outputs = [describe(t, name not in UNWRITTEN) for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
        self.ops.append([self.step, name, outputs, inputs])
        return out


class _Enough(Exception):
    """Raised after the last traced step."""


def kernels(events) -> dict[int, list[str]]:
    """Per operation index, the BACKEND kernels the profiler saw inside its range."""
    out = {}
    for event in events:
        if not event.name.startswith(MARK):
            continue
        names, stack = set(), list(event.cpu_children)
        while stack:
            e = stack.pop()
            names.add(e.name)
            stack.extend(e.cpu_children)
        found = sorted(n for n in names if BACKEND.search(n))
        if found:
            out[int(event.name[len(MARK):])] = found
    return out


def child(steps: int, conv: str) -> dict:
    """The cell's training in this process (cwd: a project copy whose slot data is made) under a
    Tracer, stopped after ``steps`` steps; the trace."""
    from agman.config.matrix import cell_config

    from agman import portable
    from agman.config import load_config
    from agman.pipeline.cache import load_cached
    from agman.pipeline.cell import cell_paths
    from agman.pipeline.layout import SlotPaths
    from agman.training import step as step_module
    from agman.training.loop import TrainPaths, train

    cfg = load_config()
    if cfg.train.portable:
        portable.enter()  # before this process computes anything, as the cell stage does
    set_conv(conv)
    run_cfg = cell_config(cfg, CELL, cfg.train.seeds[0])
    paths = cell_paths(cfg, CELL)
    data = load_cached(paths.slot)
    tracer = Tracer(marks=True)
    original = step_module.TrainStep.__call__

    def counted(self, *args, **kwargs):
        tracer.step += 1
        out = original(self, *args, **kwargs)
        if tracer.step >= steps:
            raise _Enough
        return out

    step_module.TrainStep.__call__ = counted
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        try:
            with tracer:
                train(run_cfg, data, TrainPaths(triplet_dir=SlotPaths(paths.slot).triplets, out_dir=paths.run(0),
                                                curves=paths.curves(0)))
        except _Enough:
            pass
        finally:
            step_module.TrainStep.__call__ = original
    return {"portable": portable.state(), "conv": conv, "steps": tracer.step, "ops": tracer.ops,
            "kernels": kernels(prof.events())}


_TIME = re.compile(r",[0-9.]+$")  # oneDNN's time in ms, last field
_MKL_TIME = re.compile(r"\s[0-9.]+(ns|us|ms|s)\s")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")  # MKL prints its arguments' addresses
_MKL_VERSION = ("MKL_VERBOSE oneMKL", "MKL_VERBOSE Intel")  # at its first call: the version, the code path


def library_lines(log: str, n_ops: int) -> tuple[list[str], dict[int, list[str]]]:
    """oneDNN's and MKL's verbose lines from a traced process's stdout: those before the first
    mark (versions, the ISA they found) and, per operation index, those its call printed;
    timings dropped, so that the lines compare between machines."""
    header, per_op, current = [], {}, None
    for line in log.splitlines():
        if line.startswith(MARK):
            current = int(line[len(MARK):])
            continue
        if line.startswith(("onednn_verbose", "dnnl_verbose")):
            line = _TIME.sub("", line)
        elif line.startswith("MKL_VERBOSE"):
            line = _ADDRESS.sub("0x", _MKL_TIME.sub(" ", line))
        else:
            continue
        if current is None or "info" in line.split(",")[:4] or line.startswith(_MKL_VERSION):
            header.append(line)
        elif current < n_ops:
            per_op.setdefault(current, []).append(line)
    return header, per_op


def runs(lines: list[str]) -> list[str]:
    """Equal lines as one, ``[xN]`` after it, in the order each first came: the same GEMM once
    per image of a batch, from either thread."""
    counts = Counter(lines)
    return [line if counts[line] == 1 else f"{line} [x{counts[line]}]" for line in counts]


def library(line: str) -> str:
    """``onednn`` or ``mkl`` for a verbose line; a kernel's own name for the profiler's."""
    if line.startswith("MKL_VERBOSE"):
        return "mkl"
    return line if line.startswith("aten::") else "onednn"


def summary(ops: list[list]) -> dict:
    """Per library (or backend kernel), the operations that ran it and how often."""
    out: dict[str, Counter] = {"onednn": Counter(), "mkl": Counter()}
    for op in ops:
        for lib in {library(line) for line in (op[4] if len(op) > 4 else [])}:
            out.setdefault(lib, Counter())[op[1]] += 1
    return {lib: dict(sorted(c.items())) for lib, c in sorted(out.items())}


def record(steps: int, conv: str) -> dict:
    """A trace of this machine: the slot's data stages in a project copy, then the traced training."""
    with tempfile.TemporaryDirectory(prefix="agman-op-trace-") as tmp:
        workdir = Path(tmp)
        project_copy(workdir)
        prepare_slot(workdir, SLOT)
        env = {**stage_env(workdir), "ONEDNN_VERBOSE": "1", "MKL_VERBOSE": "1", "PYTHONPATH": str(ROOT / "benchmarks")}
        result = workdir / "trace.json"
        code = (f"import json, op_trace; json.dump(op_trace.child({steps}, {conv!r}), "
                f"open({str(result)!r}, 'w'))")
        proc = subprocess.run([sys.executable, "-c", code], cwd=workdir, env=env, capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(f"the traced training failed:\n{proc.stderr[-3000:]}")
        trace = json.loads(result.read_text())
    header, per_op = library_lines(proc.stdout, len(trace["ops"]))
    for index, op in enumerate(trace["ops"]):  # [step, name, outputs, inputs(, backend)]
        backend = trace["kernels"].get(str(index), []) + runs(per_op.get(index, []))
        if backend:
            op.append(backend)
    return {"cell": CELL, "cpu": cpu_id(), "cpu_caches": cpu_caches(),
            "uncapped_aten_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__,
            "code": code_state(), **{k: trace[k] for k in ("portable", "conv", "steps")},
            "library_header": header, "library_ops": summary(trace["ops"]), "ops": trace["ops"]}


def write(trace: dict, path: Path) -> None:
    """JSON with one operation a line: small to store and to diff."""
    head = {k: v for k, v in trace.items() if k != "ops"}
    body = ",\n".join(json.dumps(op, separators=(",", ":")) for op in trace["ops"])
    text = json.dumps(head, indent=1, sort_keys=True)[:-2] + ',\n "ops": [\n' + body + "\n ]\n}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def first_difference(a: list[list], b: list[list]) -> dict | None:
    """The first operation whose name or outputs differ between two traces (None when none
    does): its index, step and name, which of its outputs and inputs are equal, and for each
    input that differs, the earlier operation of trace ``a`` that made it (None: none did, the
    input came from outside the traced operations)."""
    made_by = {}
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x[1] != y[1] or len(x[2]) != len(y[2]) or len(x[3]) != len(y[3]):
            return {"index": i, "step": x[0], "name": x[1], "other_name": y[1], "kind": "another operation"}
        if x[2] != y[2]:
            inputs_equal = [u == v for u, v in zip(x[3], y[3], strict=True)]
            return {
                "index": i, "step": x[0], "name": x[1], "kind": "outputs",
                "outputs_equal": [u == v for u, v in zip(x[2], y[2], strict=True)], "inputs_equal": inputs_equal,
                "differing_inputs_made_by": {k: made_by.get(x[3][k]) for k, eq in enumerate(inputs_equal) if not eq},
                "libraries": [x[4] if len(x) > 4 else [], y[4] if len(y) > 4 else []],
            }
        for out in x[2]:
            if not out.endswith(":-"):
                made_by.setdefault(out.rsplit(":", 1)[1], i)
    if len(a) != len(b):
        return {"index": min(len(a), len(b)), "kind": "length", "lengths": [len(a), len(b)]}
    return None


def compare(a: dict, b: dict) -> dict:
    diff = first_difference(a["ops"], b["ops"])
    return {"traces": [{"cpu": t["cpu"], "code": t["code"].get("commit"), "conv": t["conv"],
                        "ops": len(t["ops"])} for t in (a, b)],
            "same_code": a["code"].get("sha256") == b["code"].get("sha256"),
            "library_header_equal": a["library_header"] == b["library_header"],
            "first_difference": diff}


def say(result: dict) -> str:
    """The comparison in a few lines."""
    diff = result["first_difference"]
    lines = [] if result["same_code"] else ["the traces were made with other code: they part where the code does"]
    if diff is None:
        return "\n".join(lines + [f"all {result['traces'][0]['ops']} operations agree bit for bit"])
    if diff["kind"] == "length":
        return "\n".join(lines + [f"the first {diff['index']} operations agree; then one trace ends"])
    where = f"operation {diff['index']} (step {diff['step']}, 0 = before the first), {diff['name']}"
    if diff["kind"] == "another operation":
        return "\n".join(lines + [f"{where}: the other trace runs {diff['other_name']} there"])
    ins = "all its inputs equal" if all(diff["inputs_equal"]) else (
        f"inputs equal {diff['inputs_equal']}; those that differ come from operations "
        f"{diff['differing_inputs_made_by']} (None: from outside the trace)")
    lines.append(f"first difference at {where}: outputs equal {diff['outputs_equal']}, {ins}")
    for side, libs in zip(("a", "b"), diff["libraries"], strict=True):
        lines += [f"  {side}: {line}" for line in libs]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="trace this machine's first training steps")
    rec.add_argument("--out", type=Path, required=True)
    rec.add_argument("--steps", type=int, default=2,
                     help="training steps traced (the ci cell has 2; more traces its validation too)")
    rec.add_argument("--conv", choices=sorted(CONV), default="onednn",
                     help="the code that runs convolutions (benchmarks/cross_machine.py --help)")
    cmp_ = sub.add_parser("compare", help="the first operation that differs between two traces")
    cmp_.add_argument("a", type=Path)
    cmp_.add_argument("b", type=Path)
    args = parser.parse_args(argv)
    if args.command == "record":
        trace = record(args.steps, args.conv)
        write(trace, args.out)
        result = {k: trace[k] for k in ("cpu", "steps", "conv", "library_ops")} | {"ops": len(trace["ops"])}
        print(json.dumps(result, indent=2))
        return result
    result = compare(json.loads(args.a.read_text()), json.loads(args.b.read_text()))
    print(json.dumps(result, indent=2))
    print(say(result), file=sys.stderr)
    return result


if __name__ == "__main__":
    main()
