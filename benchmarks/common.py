"""Shared helpers of the benchmark scripts: the machine they ran on, medians, peak memory."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

# Benchmark the package next to this folder, not whichever copy of it is installed.
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict:
    """What the figures depend on; the load average shows how busy the machine was."""
    info = {
        "cpu": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }
    if hasattr(os, "getloadavg"):
        info["load_average_1_5_15min"] = [round(x, 2) for x in os.getloadavg()]
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def folder_bytes(folder: Path) -> int:
    """Bytes of the files under ``folder`` (0 when it does not exist); files vanishing meanwhile are skipped."""
    total = 0
    for dirpath, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except FileNotFoundError:
                pass
    return total


def median_seconds(fn, repeats: int, sync=None) -> tuple[float, list[float]]:
    """Median wall time of ``repeats`` calls of ``fn`` (``sync`` is called before each clock read)."""
    times = []
    for _ in range(repeats):
        if sync:
            sync()
        start = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Peak increase of the resident set size while the block runs, sampled every millisecond
    from /proc/self/statm (Linux). torch's CPU allocator is invisible to tracemalloc, so this is
    the figure that counts its tensors; a spike shorter than a millisecond can be missed."""

    def __enter__(self):
        self.start = _rss_bytes()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(0.001)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())
        self.increase_mb = (self.peak - self.start) / 2**20
        return False


def plant_imagenet_weights(torch_home: Path, backbone: str = "resnet50") -> Path:
    """A random state dict saved where torchvision keeps ``backbone``'s ImageNet weights under
    ``torch_home``, for machines that cannot download them: ``model.pretrained: true`` then runs
    its real loading path (the numbers are not ImageNet-initialised ones)."""
    import torchvision

    from agman.models.backbone import weights_file

    previous = os.environ.get("TORCH_HOME")
    os.environ["TORCH_HOME"] = str(torch_home)
    try:
        path = weights_file(backbone)
    finally:
        if previous is None:
            del os.environ["TORCH_HOME"]
        else:
            os.environ["TORCH_HOME"] = previous
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(getattr(torchvision.models, backbone)(weights=None).state_dict(), path)
    return path


def report(result: dict) -> dict:
    """A benchmark's result, with the load after it ran, printed as its one JSON object; returned."""
    result["machine_after"] = {"load_average_1_5_15min": machine().get("load_average_1_5_15min")}
    print(json.dumps(result, indent=2))
    return result
