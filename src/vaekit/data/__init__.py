"""Data: the dataset registry and readers (``datasets``), preprocessing fitted on the
training split, and the defaults chosen from the data."""

from . import datasets as datasets, defaults as defaults, preprocessing as preprocessing
from .preprocessing import Preprocessor as Preprocessor
