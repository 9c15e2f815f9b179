"""Training runs and model files: the configuration of ``vaekit train``, run folders,
``train`` (what ``vaekit train`` runs) and ``vk.save``/``vk.load`` (:mod:`.serialization`)."""

from . import config as config, folder as folder, serialization as serialization
from ._data import RunData as RunData, Split as Split, load_split as load_split, resolve_from_data as resolve_from_data
from ._train import (
    RunInterrupted as RunInterrupted,
    read_metrics as read_metrics,
    train as train,
    write_metrics as write_metrics,
)
from .config import data_kwargs as data_kwargs, read_config as read_config, resolve_config as resolve_config
from .folder import load_run as load_run
from .serialization import Loaded as Loaded, load as load, register as register, save as save
