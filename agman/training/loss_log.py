"""An epoch's per-batch losses, kept on the training device.

Reading a loss on the host waits for the GPU to finish every step queued before it, so the loop
does it only every ``train.check_every`` batches and at the end of the epoch. Each read takes
every batch added since, summed over ranks (each rank's means weighted by its triplets, as with
one process), so every rank sees the same numbers; a non-finite loss then stops the run naming
the first bad epoch and batch, at most ``check_every`` batches after it happened.
"""

from __future__ import annotations

import torch

from agman.training import distributed
from agman.training.step import LOSS_TERMS


class LossLog:
    def __init__(self, n_batches: int, device: torch.device, epoch: int, every: int):
        if every < 1:
            raise ValueError(f"train.check_every: {every} must be at least 1")
        # Per batch: each loss term times the batch's triplets, then the triplets (this rank's).
        self._rows = torch.zeros(n_batches, len(LOSS_TERMS) + 1, dtype=torch.float64, device=device)
        self.per_batch = torch.zeros(n_batches, len(LOSS_TERMS) + 1, dtype=torch.float64)  # read: over all ranks
        self.epoch, self.every, self.read = epoch, every, 0

    def add(self, batch: int, values: torch.Tensor, triplets: int) -> None:
        """Batch ``batch``'s (4,) LOSS_TERMS, means over its ``triplets``; no host synchronisation."""
        self._rows[batch, :-1] = values.double() * triplets
        self._rows[batch, -1] = triplets

    def due(self, batch: int) -> bool:
        return (batch + 1) % self.every == 0

    def check(self, upto: int) -> None:
        """Read batches ``[read, upto)`` (a collective under DDP: every rank calls it at the same
        batch); FloatingPointError at the first non-finite one."""
        rows = distributed.all_reduce_sum(self._rows[self.read:upto].clone()).cpu()  # (k, 5)
        means = rows[:, :-1] / rows[:, -1:].clamp(min=1)
        bad = (~torch.isfinite(means).all(dim=1)).nonzero()
        if len(bad):
            k = int(bad[0])
            values = ", ".join(f"{name}={float(v):.4g}" for name, v in zip(LOSS_TERMS, means[k], strict=True))
            raise FloatingPointError(f"non-finite loss ({float(means[k, 0])}) at epoch {self.epoch + 1}, batch "
                                     f"{self.read + k + 1}: {values}")
        self.per_batch[self.read:upto] = rows
        self.read = upto

    def means(self) -> dict[str, float]:
        """Each term's mean over every triplet read so far."""
        totals = self.per_batch[:self.read].sum(dim=0)
        return {name: float(totals[i] / max(float(totals[-1]), 1.0)) for i, name in enumerate(LOSS_TERMS)}
