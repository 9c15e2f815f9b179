"""Anomaly detection: scores of a trained VAE (``vk.anomaly.score`` and one function per
method, higher = more anomalous) and the scikit-learn detector ``VAEDetector`` (imported
on first use: it needs scikit-learn)."""

import warnings
from pathlib import Path
from typing import Any

from ..runs import serialization as _serialization
from .scores import (
    METHODS as METHODS,
)
from .scores import (
    check_method as check_method,
)
from .scores import (
    jacodeco as jacodeco,
)
from .scores import (
    latent as latent,
)
from .scores import (
    log_likelihood as log_likelihood,
)
from .scores import (
    negative_elbo as negative_elbo,
)
from .scores import (
    reconstruction as reconstruction,
)
from .scores import (
    reconstruction_mean as reconstruction_mean,
)
from .scores import (
    reconstruction_probability as reconstruction_probability,
)
from .scores import (
    score as score,
)


def _load_detector(path: Path, meta: dict, like: Any) -> Any:
    from .detector import VAEDetector

    return VAEDetector.load(path)


_serialization.register("detector", _load_detector, model=False, load_with="vk.VAEDetector.load(path)")


def __getattr__(name: str) -> Any:
    if name == "elbo":  # deprecated: the score is the *negative* ELBO, unlike vk.elbo
        warnings.warn(
            "vaekit.anomaly.elbo is deprecated: it returns the negative ELBO (vk.elbo returns the "
            "ELBO). Use vaekit.anomaly.negative_elbo.",
            DeprecationWarning,
            stacklevel=2,
        )
        return negative_elbo
    if name == "VAEDetector":
        from .detector import VAEDetector

        return VAEDetector
    raise AttributeError(f"module 'vaekit.anomaly' has no attribute {name!r}")


__all__ = [
    "METHODS",
    "VAEDetector",
    "check_method",
    "jacodeco",
    "latent",
    "log_likelihood",
    "negative_elbo",
    "reconstruction",
    "reconstruction_mean",
    "reconstruction_probability",
    "score",
]
