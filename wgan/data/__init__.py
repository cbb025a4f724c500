"""Data sets for training: built-in toys and digits, and user uploads, all offline."""

from wgan.data.files import DataError, ReadLimits, canonical_array, read_data
from wgan.data.sources import (
    BUILTIN,
    DatasetInfo,
    DataSource,
    TensorSource,
    ToySource,
    info_for_array,
    open_builtin,
    source_from_array,
)

__all__ = [
    "BUILTIN",
    "DataError",
    "DataSource",
    "DatasetInfo",
    "ReadLimits",
    "TensorSource",
    "ToySource",
    "canonical_array",
    "info_for_array",
    "open_builtin",
    "read_data",
    "source_from_array",
]
