"""What training carries from epoch to epoch, and the error that stops it."""

from __future__ import annotations

from typing import Any, NamedTuple

from jaxtyping import Array

from ..core import AbstractVAE


class TrainState(NamedTuple):
    """Everything needed to continue training exactly where it stopped.

    ``epoch`` counts completed epochs; ``step`` completed optimizer steps. ``history``
    is a snapshot: it holds exactly ``epoch`` entries per key and does not change when
    training goes on.
    """

    model: AbstractVAE
    opt_state: Any
    step: Array
    epoch: int
    history: dict[str, list[float]]


class TrainingDiverged(FloatingPointError):
    """Training stopped: the model's parameters became non-finite, every step of an
    epoch had a non-finite loss or gradient, or the validation loss became non-finite.

    ``epoch`` is the epoch that diverged (1-based), ``state`` the last good
    :class:`TrainState` (the one before it), ``skipped``/``steps`` the non-finite and
    all steps of the diverged epoch, ``reason`` what happened.
    """

    def __init__(self, message: str, *, epoch: int, state: TrainState, skipped: int, steps: int, reason: str = ""):
        super().__init__(message)
        self.epoch, self.state, self.skipped, self.steps, self.reason = epoch, state, skipped, steps, reason
