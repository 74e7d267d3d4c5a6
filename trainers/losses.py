"""Training losses: pixel L1/L2 and output distillation from a frozen teacher.

Distillation (as SRN and the NTIRE ESR entries use it) adds the L1 distance between the student's
and the teacher's outputs for the same LR input::

    loss = pixel_weight * pixel(S(LR), HR) + weight * L1(S(LR), T(LR))

Models may work in different pixel ranges (FMEN-S/RLFN in 0..255, IMDN in 0..1): the teacher is
fed its own range and its raw (unclamped) output is rescaled into the student's range.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from search_space.anchors import list_anchors, load
from search_space.errors import InputError

__all__ = ["pixel_loss", "Teacher", "load_teacher", "TrainingLoss"]

_PIXEL_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "l1": F.l1_loss,
    "l2": F.mse_loss,
}


def pixel_loss(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Mean absolute (``l1``) or squared (``l2``) error."""
    return _PIXEL_LOSSES[name]


class Teacher(nn.Module):
    """A frozen SR model that answers in the student's pixel range.

    Args:
        model: The teacher (its ``input_range`` attribute, default 1, is its pixel range).
        student_range: Pixel range of the student's inputs and outputs.
    """

    def __init__(self, model: nn.Module, student_range: float) -> None:
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.to_teacher = float(getattr(model, "input_range", 1.0)) / student_range

    def train(self, mode: bool = True) -> Teacher:  # stays in eval mode (BN statistics frozen)
        return self

    @torch.no_grad()
    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        # lr in [0, student_range] -> teacher range -> teacher output -> student range
        return self.model(lr * self.to_teacher) / self.to_teacher


def load_teacher(teacher: str, *, scale: int, student_range: float) -> Teacher:
    """An anchor with official weights (by name) or an esrnas checkpoint, as a :class:`Teacher`."""
    from trainers.evaluate import model_from_checkpoint

    if teacher in list_anchors():
        model = load(teacher, scale=scale, weights="official")
    else:
        model = model_from_checkpoint(Path(teacher))
        if model.scale != scale:
            raise InputError(f"distill.teacher: {teacher} is a x{model.scale} model, the student "
                             f"is x{scale}")
    return Teacher(model, student_range)


class TrainingLoss:
    """Pixel loss plus optional distillation.

    Args:
        kind: Pixel loss. Option: l1 | l2.
        teacher: Frozen teacher, or None for no distillation.
        weight: Weight of the distillation term.
        pixel_weight: Weight of the pixel term (1 without a teacher).
    """

    def __init__(self, kind: str = "l1", *, teacher: Teacher | None = None, weight: float = 1.0,
                 pixel_weight: float = 1.0) -> None:
        self.pixel = pixel_loss(kind)
        self.teacher = teacher
        self.weight = weight
        self.pixel_weight = pixel_weight if teacher is not None else 1.0

    def __call__(self, sr: torch.Tensor, hr: torch.Tensor, lr: torch.Tensor) -> torch.Tensor:
        loss = self.pixel(sr, hr)
        if self.teacher is None:
            return loss
        target = self.teacher(lr).to(sr.dtype)
        return self.pixel_weight * loss + self.weight * F.l1_loss(sr, target)
