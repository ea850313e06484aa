"""Every figure of one table slot, from its runs of one seed: what the figures stage draws."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from agman.data.prepared import PreparedData
from agman.data.registry import DATASET_NAMES, dataset_spec
from agman.evaluation import SCORE
from agman.experiments import SLOTS, VARIANT_LABELS
from agman.inference import load_trained
from agman.reports.figures.attention import attention_maps
from agman.reports.figures.curves import validation_curves
from agman.reports.figures.ranking import ranking_comparison
from agman.reports.figures.retrieval import retrieval_examples
from agman.reports.figures.triplets import triplet_examples

log = logging.getLogger(__name__)


def _source(data: PreparedData) -> str:
    """The data the figures show: its dataset name, marked when it is a demo stand-in."""
    dataset = data.meta.get("dataset", "")
    return f"{dataset}, demo stand-in" if dataset in DATASET_NAMES and dataset_spec(dataset).demo else dataset


@dataclass(frozen=True)
class SlotRuns:
    """What the figures of one table slot read."""

    slot: str  # fashionai, deepfashion or zappos (a key of agman.experiments.SLOTS)
    data: PreparedData  # the slot's prepared data with its image cache
    checkpoints: dict[str, Path]  # variant -> best.pt of the figures' seed; must hold "agman"
    curves: dict[str, Path]  # variant -> per-epoch CSV of the same seed (reports/curves)


def slot_figures(runs: SlotRuns, out_dir: str | Path, seed: int = 0, device: str = "auto") -> list[tuple[Path, float]]:
    """Every figure of one slot: Figures 5-7 (retrieval) or 8 (triplets), then the curves.

    Returns (PNG, seconds it took) pairs. Figure 6 ranks with every variant in ``checkpoints``,
    AG-MAN first; the others follow in the order given.
    """
    out_dir = Path(out_dir)
    slot, data = runs.slot, runs.data
    if "agman" not in runs.checkpoints:
        raise KeyError(f"slot {slot}: the figures need AG-MAN's checkpoint (variant 'agman')")
    title = SLOTS[slot].title if slot in SLOTS else slot
    agman = load_trained(runs.checkpoints["agman"], device)
    data_line = f"{title} ({_source(data)}), test split, seed {seed}"
    subtitle = f"{VARIANT_LABELS['agman']} on {data_line}; checkpoint {runs.checkpoints['agman']}"
    written = []

    def timed(make, name: str, *args, **kwargs) -> None:
        start = time.perf_counter()
        path = make(*args, out=out_dir / name, **kwargs)
        written.append((path, time.perf_counter() - start))
        log.info("%s written in %.1f s", path, written[-1][1])

    if data.task == "retrieval":
        timed(retrieval_examples, f"fig5_retrieval_{slot}.png", agman, data, subtitle, seed=seed)
        models = {VARIANT_LABELS["agman"]: agman}
        for variant, checkpoint in runs.checkpoints.items():
            if variant != "agman":
                models[VARIANT_LABELS.get(variant, variant)] = load_trained(checkpoint, device)
        timed(ranking_comparison, f"fig6_ranking_{slot}.png", models, data,
              f"{data_line}; each model's run of the same seed; AP of each ranking of the 10", seed=seed)
        timed(attention_maps, f"fig7_attention_{slot}.png", agman, data, subtitle, seed=seed)
    else:
        timed(triplet_examples, f"fig8_triplets_{slot}.png", agman, data, subtitle, seed=seed)
    if runs.curves:
        score = SCORE[data.task]
        labels = {VARIANT_LABELS.get(v, v): path for v, path in runs.curves.items()}
        timed(validation_curves, f"curves_{slot}.png", labels, score,
              f"Validation {'MAP' if score == 'map' else 'accuracy'} per epoch, {title}",
              subtitle=f"{_source(data)}; one line per variant, the run of seed {seed}")
    return written
