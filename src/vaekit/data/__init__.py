"""Data: the dataset registry and readers (``datasets``; one CSV reader and writer), preprocessing
fitted on the training split, and the defaults chosen from the data."""

from . import datasets as datasets
from . import defaults as defaults
from . import preprocessing as preprocessing
from ._files import iter_numeric as iter_numeric
from ._files import read_csv as read_csv
from ._files import read_numeric as read_numeric
from ._files import read_table as read_table
from ._files import write_csv as write_csv
from ._files import write_csv_chunks as write_csv_chunks
from .preprocessing import Preprocessor as Preprocessor
