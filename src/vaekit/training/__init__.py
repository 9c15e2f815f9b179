"""Training: optimizers, the compiled step (``Trainer``), the epoch loop (``fit``), streamed
data sources with prefetching, several devices and processes, and the files training
writes (:mod:`vaekit.training.checkpoints`)."""

from . import checkpoints as checkpoints, distributed as distributed
from . import precision as precision
from ._loop import Checkpointing as Checkpointing, Streaming as Streaming, fit as fit, signals_held as signals_held
from ._optimizers import (
    SkipNonFiniteState as SkipNonFiniteState,
    clip_skip_nonfinite as clip_skip_nonfinite,
    default_optimizer as default_optimizer,
)
from ._source import ArrayLike as ArrayLike, ArraySource as ArraySource, Source as Source
from ._state import TrainingDiverged as TrainingDiverged, TrainState as TrainState
from ._streaming import map_batches as map_batches
from ._trainer import (
    BatchTransform as BatchTransform,
    LossFn as LossFn,
    Trainer as Trainer,
    as_key as as_key,
    make_loss as make_loss,
)
