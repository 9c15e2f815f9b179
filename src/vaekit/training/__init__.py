"""Training: optimizers, the compiled loop (``Trainer``, ``fit``), streamed data sources
with prefetching, several devices and processes, and checkpoint files."""

from . import checkpoints as checkpoints, distributed as distributed
from ._loop import (
    TrainingDiverged as TrainingDiverged,
    Trainer as Trainer,
    TrainState as TrainState,
    as_key as as_key,
    clip_skip_nonfinite as clip_skip_nonfinite,
    default_optimizer as default_optimizer,
    fit as fit,
    make_loss as make_loss,
    map_batches as map_batches,
)
from ._source import ArrayLike as ArrayLike, ArraySource as ArraySource, Source as Source
