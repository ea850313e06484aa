"""One training step (Sec. IV-A), run eagerly or replayed from a CUDA graph (``train.cuda_graphs``).

The step: mirror and normalise the uint8 batch, the model's forward under autocast, the triplet
loss (Eq. 8) and the classification loss (Eq. 7) under the loss weighting (Eq. 9), a model's own
penalty (CSN), backward, Adam. At the paper's batch (16 triplets, 48 images) an eager step on a
fast GPU is mostly the launching of several hundred small kernels from Python; a CUDA graph
launches them all at once. What capturing needs, and how it is met:

- fixed shapes and addresses: every batch is copied into the same input tensors, and a batch of
  another size (a short last batch) or loss scale runs eagerly: the same code on the same
  parameters and optimiser state;
- no host synchronisation and no host-to-device copy inside the step: the losses come back as a
  device tensor (``agman.training.loss_log``), the flips come in as data, the normalisation's
  constants are made before capture;
- a schedule that reaches the replayed step: on CUDA, Adam runs with ``capturable=True`` and its
  learning rate as a device tensor, which StepLR updates in place (a float would be baked into
  the graph and freeze the schedule);
- autocast without its weight cache, whose casts would not survive the capture.

Eager and graphed steps on CUDA run the same kernels (Adam is capturable in both), so either kind
of run resumes the other's ``last.pt`` (``optimizer_state`` saves a form both load).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from agman.data.images import normalise
from agman.device import autocast_context
from agman.losses import attribute_classification_loss, triplet_ranking_loss

#: What a step returns, in this order: the weighted loss, then each term (0 when the model has none).
LOSS_TERMS = ("loss", "triplet", "cls", "penalty")
#: Eager steps before the capture, on a side stream: cuDNN's autotuner, Adam's state and the
#: allocator settle there.
WARMUP_STEPS = 3


@dataclass(frozen=True)
class StepSettings:
    margin: float  # triplet margin m (loss.margin)
    with_logits: bool  # whether the model computes the classification branch (L_c joins the loss)
    amp_dtype: str  # train.amp_dtype (CUDA only)
    memory_format: torch.memory_format  # of the images the model takes


class TrainStep:
    """One optimisation step on a batch of 3B uint8 images (anchors, positives, negatives), the
    (3B,) mirror flags and the (3B,) attribute types; returns the (4,) LOSS_TERMS on the device."""

    def __init__(self, model: nn.Module, weighting: nn.Module, optimizer: torch.optim.Optimizer,
                 settings: StepSettings, device: torch.device):
        self.model, self.weighting, self.optimizer = model, weighting, optimizer
        self.settings, self.device = settings, device

    def __call__(self, images: torch.Tensor, flips: torch.Tensor, attrs: torch.Tensor,
                 scale: float = 1.0) -> torch.Tensor:
        s = self.settings
        x = normalise(images, flips).contiguous(memory_format=s.memory_format)  # (3B, 3, S, S) float32
        with autocast_context(self.device, s.amp_dtype, cache_enabled=False):
            out = self.model(x, attrs, with_logits=s.with_logits)
        emb_a, emb_p, emb_n = out.embedding.float().chunk(3)  # 3 x (B, c')
        triplet = triplet_ranking_loss(emb_a, emb_p, emb_n, s.margin)
        losses = {"triplet": triplet}
        if out.logits is not None:
            losses["cls"] = attribute_classification_loss(out.logits.float(), attrs)
        loss = self.weighting(losses)
        zero = torch.zeros_like(loss)
        penalty = zero if out.penalty is None else out.penalty.float()  # outside the weighting
        loss = loss + penalty
        self.optimizer.zero_grad(set_to_none=True)
        (loss if scale == 1 else loss * scale).backward()  # DDP averages the gradients over ranks
        self.optimizer.step()
        return torch.stack([loss, triplet, losses.get("cls", zero), penalty]).detach()  # (4,)


class GraphedStep:
    """A TrainStep replayed from one CUDA graph for batches of ``images`` images at scale 1;
    other batches, and the first WARMUP_STEPS, run eagerly."""

    def __init__(self, step: TrainStep, images: int):
        self.step, self.images = step, images
        self.graph: torch.cuda.CUDAGraph | None = None
        self.eager_steps = 0
        self._inputs: tuple[torch.Tensor, ...] = ()
        self._out: torch.Tensor | None = None

    def __call__(self, images: torch.Tensor, flips: torch.Tensor, attrs: torch.Tensor,
                 scale: float = 1.0) -> torch.Tensor:
        if len(images) != self.images or scale != 1:
            return self.step(images, flips, attrs, scale)
        if not self._inputs:
            self._inputs = tuple(torch.empty_like(t) for t in (images, flips, attrs))  # keeps the memory format
        for static, batch in zip(self._inputs, (images, flips, attrs), strict=True):
            static.copy_(batch, non_blocking=True)
        if self.graph is None:
            if self.eager_steps < WARMUP_STEPS:
                return self._warm_up()
            self._capture()
        self.graph.replay()
        return self._out

    def _warm_up(self) -> torch.Tensor:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            out = self.step(*self._inputs)
        torch.cuda.current_stream().wait_stream(side)
        out.record_stream(torch.cuda.current_stream())  # the caller reads it there
        self.eager_steps += 1
        return out

    def _capture(self) -> None:
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                self._out = self.step(*self._inputs)
        except RuntimeError as err:
            raise RuntimeError(f"train.cuda_graphs: the training step could not be captured as a CUDA graph "
                               f"({' '.join(str(err).split())[:300]}); set train.cuda_graphs: false to train "
                               "eagerly") from err
        self.graph = graph  # capturing records the step without running it: the caller replays


def build_optimizer(params: list[nn.Parameter], lr: float, device: torch.device) -> torch.optim.Adam:
    """Adam at ``lr``; on CUDA capturable, with the learning rate as a device tensor (see the module docstring)."""
    if device.type == "cuda":
        return torch.optim.Adam(params, lr=torch.tensor(lr, device=device), capturable=True)
    return torch.optim.Adam(params, lr=lr)


def _scalar(value):
    return float(value) if isinstance(value, torch.Tensor) and value.dim() == 0 else value


def optimizer_state(optimizer: torch.optim.Optimizer) -> dict:
    """``optimizer.state_dict()`` in the form every device loads: learning rates as floats, not capturable."""
    state = optimizer.state_dict()
    groups = [{**{k: _scalar(v) for k, v in g.items()}, "capturable": False} for g in state["param_groups"]]
    return {"state": state["state"], "param_groups": groups}


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict) -> None:
    """Load what ``optimizer_state`` saved into ``optimizer``, in ``optimizer``'s own form
    (capturable or not, tensor or float learning rate)."""
    own = optimizer.param_groups[0]
    groups = [{**g, "capturable": own["capturable"]} for g in state["param_groups"]]
    optimizer.load_state_dict({"state": state["state"], "param_groups": groups})
    for group in optimizer.param_groups:  # load_state_dict took the saved floats
        for key in ("lr", "initial_lr"):
            if isinstance(own["lr"], torch.Tensor) and key in group and not isinstance(group[key], torch.Tensor):
                group[key] = torch.tensor(group[key], device=own["lr"].device)


def scheduler_state(scheduler: torch.optim.lr_scheduler.LRScheduler) -> dict:
    """``scheduler.state_dict()`` with its learning rates as floats (tensors on CUDA)."""
    return {k: [_scalar(v) for v in value] if isinstance(value, list) else _scalar(value)
            for k, value in scheduler.state_dict().items()}
