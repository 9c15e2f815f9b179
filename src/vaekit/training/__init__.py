"""Training: optimizers, the compiled step (``Trainer``), the epoch loop (``fit``), streamed
data sources with prefetching, several devices and processes, and the files training
writes (:mod:`vaekit.training.checkpoints`)."""

from . import checkpoints as checkpoints
from . import distributed as distributed
from . import loggers as loggers
from . import precision as precision
from ._loop import Checkpointing as Checkpointing
from ._loop import Streaming as Streaming
from ._loop import fit as fit
from ._loop import signals_held as signals_held
from ._optimizers import (
    SkipNonFiniteState as SkipNonFiniteState,
)
from ._optimizers import (
    clip_skip_nonfinite as clip_skip_nonfinite,
)
from ._optimizers import (
    default_optimizer as default_optimizer,
)
from ._source import ArrayLike as ArrayLike
from ._source import ArraySource as ArraySource
from ._source import Source as Source
from ._state import TrainingDiverged as TrainingDiverged
from ._state import TrainState as TrainState
from ._streaming import map_batches as map_batches
from ._trainer import (
    BatchTransform as BatchTransform,
)
from ._trainer import (
    LossFn as LossFn,
)
from ._trainer import (
    Trainer as Trainer,
)
from ._trainer import (
    as_key as as_key,
)
from ._trainer import (
    make_loss as make_loss,
)
