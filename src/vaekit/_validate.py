"""The few argument checks every layer shares, with the project's messages.

Each check returns the value it accepted (ints as Python ints) or raises a ``ValueError``
that names the argument, what it must be and what it got::

    n = positive_int(n_samples, "n_samples")        # "n_samples must be a positive int, got 0."
    kl = one_of(kl, ("auto", "analytic", "mc"), "kl")  # "Unknown kl='exact'. Valid values: ..."

Values that depend on traced arrays cannot be checked while JAX traces (inside ``jit``
or ``eqx.filter_eval_shape``); :func:`positive_array` then checks nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

import jax
import numpy as np

T = TypeVar("T")


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def int_at_least(value: Any, low: int, name: str) -> int:
    """``value`` as an int when it is an int ``>= low``: "NAME must be an int >= LOW, got V."."""
    if not _is_int(value) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}.")
    return int(value)


def positive_int(value: Any, name: str) -> int:
    """``value`` as an int when it is an int ``>= 1``: "NAME must be a positive int, got V."."""
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}.")
    return int(value)


def non_negative_int(value: Any, name: str) -> int:
    """``value`` as an int when it is an int ``>= 0``: "NAME must be a non-negative int, got V."."""
    if not _is_int(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}.")
    return int(value)


def positive(value: Any, name: str) -> float:
    """``value`` as a float when it is a number ``> 0``: "NAME must be positive, got V."."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number) or not value > 0:
        raise ValueError(f"{name} must be positive, got {value!r}.")
    return float(value)


def positive_array(value: Any, name: str) -> None:
    """Refuse an array with a value ``<= 0``: "NAME must be positive everywhere."; checks
    nothing while JAX traces (the values are not known then)."""
    if isinstance(value, jax.core.Tracer):
        return
    if not bool(np.all(np.asarray(value) > 0)):
        raise ValueError(f"{name} must be positive everywhere.")


def one_of(value: T, valid: Iterable[Any], name: str, *, quote: bool = True, extra: str = "") -> T:
    """``value`` when it is one of ``valid``: "Unknown NAME=V. Valid values: 'a', 'b'[EXTRA]."

    :param quote: list the valid values as ``repr`` (``'a'``) or as plain text (``a``).
    :param extra: appended to the list, e.g. ``", or a callable"``.
    """
    valid = tuple(valid)
    if value not in valid:
        listing = ", ".join(repr(v) if quote else str(v) for v in valid)
        raise ValueError(f"Unknown {name}={value!r}. Valid values: {listing}{extra}.")
    return value
