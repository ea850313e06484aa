"""``train.portable``: the numbers of a CPU run made independent of the CPU, as far as the libraries allow.

By default each library picks its fastest code for the CPU it finds: ATen's vectorised kernels
(AVX-512 where present), oneDNN's convolutions (by instruction set), MKL's matrix products (by
vendor and instruction set); and how a reduction is split follows the thread count. Each choice
changes the rounding, and training from random weights amplifies it (docs/cross-machine.md).
The portable setting caps ATen and oneDNN at AVX2 (Intel cores since 2013, AMD since 2015
have it), puts MKL on its vendor-independent code path, fixes the thread count and asks torch for
deterministic algorithms. The paper has no such setting.

MKL's ``AVX2`` branch is not used: on an AMD CPU MKL ignores it (its verbose log then says
``CNR:AUTO``), so only ``COMPATIBLE`` is the same code on every vendor's CPU.

The libraries read their variables once, when they first pick a kernel: ATen at its first
operator, oneDNN at its first primitive, MKL at its first call (checked with
``torch.backends.cpu.get_cpu_capability()``, ``ONEDNN_VERBOSE=1`` and ``MKL_VERBOSE=1``), not at
``import torch``. So :func:`enter` must run before the process computes anything; it checks that
it did through ATen's capability, which its first operator fixes (a check that only an AVX-512
CPU can make: elsewhere the capability is AVX2 either way).
"""

from __future__ import annotations

import os

import torch

#: The environment of a portable run (``CUBLAS_WORKSPACE_CONFIG`` lets deterministic algorithms
#: run cuBLAS on a GPU; the CPU ignores it).
ENV = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_CBWR": "COMPATIBLE",
    "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
}
#: Threads of every portable run, whatever the machine has: a reduction split in two halves is
#: rounded the same on every machine that splits it in two.
THREADS = 2


class PortableError(RuntimeError):
    """The portable setting cannot hold in this process."""


def enter() -> None:
    """Put this process on the portable code paths; call it before any tensor operation.

    Raises PortableError when a tensor operation already ran (the libraries kept the kernels
    they picked then) or when the CPU has no AVX2.
    """
    os.environ.update(ENV)
    capability = torch.backends.cpu.get_cpu_capability()
    if capability == "AVX512":
        raise PortableError("train.portable: a tensor operation ran before it was set, so the libraries kept "
                            "their AVX-512 kernels; set " + " ".join(f"{k}={v}" for k, v in ENV.items())
                            + " in the environment of the process")
    if capability != "AVX2":
        raise PortableError(f"train.portable: this CPU runs {capability} kernels, not AVX2")
    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True)


def state() -> dict:
    """What a run's numbers depend on here: the capped variables, the threads, ATen's kernels."""
    return {"env": {k: os.environ.get(k) for k in ENV}, "threads": torch.get_num_threads(),
            "aten_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "deterministic": torch.are_deterministic_algorithms_enabled()}
