"""Training runs and model files: the configuration of ``vaekit train``, run folders,
``train`` (what ``vaekit train`` runs) and ``vk.save``/``vk.load`` (:mod:`.serialization`)."""

from . import config as config
from . import folder as folder
from . import serialization as serialization
from ._data import RunData as RunData
from ._data import Split as Split
from ._data import load_split as load_split
from ._data import resolve_from_data as resolve_from_data
from ._train import (
    RunInterrupted as RunInterrupted,
)
from ._train import (
    read_metrics as read_metrics,
)
from ._train import (
    train as train,
)
from ._train import (
    write_metrics as write_metrics,
)
from .config import data_kwargs as data_kwargs
from .config import read_config as read_config
from .config import resolve_config as resolve_config
from .folder import load_run as load_run
from .serialization import Loaded as Loaded
from .serialization import load as load
from .serialization import register as register
from .serialization import register_saver as register_saver
from .serialization import save as save
