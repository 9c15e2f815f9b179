"""Data: the dataset registry and readers (``datasets``; one CSV reader), preprocessing
fitted on the training split, and the defaults chosen from the data."""

from . import datasets as datasets
from . import defaults as defaults
from . import preprocessing as preprocessing
from ._files import read_csv as read_csv
from ._files import read_numeric as read_numeric
from ._files import read_table as read_table
from .preprocessing import Preprocessor as Preprocessor
