"""The one way vaekit loads matplotlib: it never chooses or switches the backend.

Library code draws with ``pyplot`` and closes every figure it saves; which backend
draws is the user's (or matplotlib's default: a non-interactive one when there is no
display). The command line sets ``MPLBACKEND=Agg`` for its own process unless the
user set one.
"""

from __future__ import annotations

from typing import Any


def pyplot() -> Any:
    """``matplotlib.pyplot``, or an ImportError that says how to install it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("Plots need matplotlib: pip install matplotlib.") from None
    return plt
