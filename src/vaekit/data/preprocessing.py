"""Preprocessing fitted on the training split and saved with the model.

``Preprocessor.fit(kind, x_train)`` learns what it needs (means, ranges) from the
training data only; ``transform``/``inverse_transform`` map data to model space and
back; ``to_dict``/``from_dict`` give a JSON form stored next to the model.

Kinds:

* ``"none"``: identity.
* ``"standardize"``: ``(x - mean) / std`` per feature (constant features get std 1).
* ``"minmax"``: ``(x - min) / (max - min)`` per feature into ``[0, 1]``.
* ``"binarize"``: ``x > threshold`` (0/1), for Bernoulli decoders.
* ``"scale"``: ``x / divisor`` (e.g. 0-255 pixels into ``[0, 1]``; ``divisor`` 255 when
  the training data exceed 1, else 1).
* ``"clip"``: ``clip(x / divisor, eps, 1 - eps)``, into the open interval a Beta
  decoder needs (values at 0 or 1 move by ``eps``).
* ``"dynamic"``: dynamic binarization. Training batches are a fresh Bernoulli draw of
  each value in ``[0, 1]`` per epoch (:meth:`batch_transform`); :meth:`transform` gives a
  fixed draw (seeded) so that evaluation is repeatable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validate import positive

KINDS = ("none", "standardize", "minmax", "binarize", "dynamic", "scale", "clip")


@dataclass(frozen=True)
class Preprocessor:
    """A fitted, JSON-serialisable preprocessing step (see the module docstring)."""

    kind: str = "none"
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"Unknown preprocessing {self.kind!r}. Valid values: {', '.join(KINDS)}.")

    @classmethod
    def fit(
        cls,
        kind: str,
        x_train: np.ndarray,
        *,
        threshold: float = 0.5,
        seed: int = 0,
        divisor: float | None = None,
        eps: float = 1e-3,
    ) -> Preprocessor:
        """Learn the statistics of ``kind`` from ``x_train [n, *shape]``.

        :param divisor: for ``"scale"``/``"clip"``; default 255 when ``x_train`` exceeds 1, else 1.
        """
        if kind not in KINDS:
            raise ValueError(f"Unknown preprocessing {kind!r}. Valid values: {', '.join(KINDS)}.")
        x = np.asarray(x_train)
        if kind in ("standardize", "minmax") or not (
            np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.bool_)
        ):  # statistics in float64; other kinds only compare values, which needs no copy
            x = np.asarray(x, np.float64)
        if kind == "standardize":
            std = x.std(0)
            return cls(kind, {"mean": x.mean(0).tolist(), "std": np.where(std > 0, std, 1.0).tolist()})
        if kind == "minmax":
            lo, hi = x.min(0), x.max(0)
            return cls(kind, {"min": lo.tolist(), "range": np.where(hi > lo, hi - lo, 1.0).tolist()})
        if kind == "binarize":
            return cls(kind, {"threshold": float(threshold)})
        if kind in ("scale", "clip"):
            if divisor is None:
                divisor = 255.0 if x.size and x.max() > 1 else 1.0
            divisor = positive(divisor, "divisor")
            if kind == "scale":
                return cls(kind, {"divisor": float(divisor)})
            if not 0 < eps < 0.5:
                raise ValueError(f"eps must be in (0, 0.5), got {eps!r}.")
            return cls(kind, {"divisor": float(divisor), "eps": float(eps)})
        if kind == "dynamic":
            if x.min() < 0 or x.max() > 1:
                raise ValueError(
                    f"Dynamic binarization needs values in [0, 1], got range [{x.min():g}, {x.max():g}]. "
                    "Use preprocessing 'minmax' first or 'binarize'."
                )
            return cls(kind, {"seed": int(seed)})
        return cls(kind, {})

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Data -> model space, float32."""
        x = np.asarray(x, np.float32)
        p = self.params
        if self.kind == "standardize":
            return ((x - np.asarray(p["mean"], np.float32)) / np.asarray(p["std"], np.float32)).astype(np.float32)
        if self.kind == "minmax":
            return ((x - np.asarray(p["min"], np.float32)) / np.asarray(p["range"], np.float32)).astype(np.float32)
        if self.kind == "binarize":
            return (x > p["threshold"]).astype(np.float32)
        if self.kind == "scale":
            return (x / np.float32(p["divisor"])).astype(np.float32)
        if self.kind == "clip":
            return np.clip(x / np.float32(p["divisor"]), p["eps"], 1 - p["eps"]).astype(np.float32)
        if self.kind == "dynamic":
            rng = np.random.default_rng(p["seed"])
            return (rng.random(x.shape) < np.clip(x, 0, 1)).astype(np.float32)
        return x

    def inverse_transform(self, x: np.ndarray) -> np.ndarray:
        """Model space -> data space (binarization keeps 0/1 values)."""
        x = np.asarray(x, np.float32)
        p = self.params
        if self.kind == "standardize":
            return x * np.asarray(p["std"], np.float32) + np.asarray(p["mean"], np.float32)
        if self.kind == "minmax":
            return x * np.asarray(p["range"], np.float32) + np.asarray(p["min"], np.float32)
        if self.kind in ("scale", "clip"):
            return x * np.float32(p["divisor"])
        return x

    def batch_transform(self):
        """``transform(key, xb) -> xb`` for ``vk.fit(batch_transform=...)``, or None.

        For ``"dynamic"`` the training data must be the values in ``[0, 1]`` (not the
        output of :meth:`transform`); each batch is redrawn with the step's key.
        """
        if self.kind != "dynamic":
            return None
        import jax

        return lambda key, xb: jax.random.bernoulli(key, xb).astype(xb.dtype)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "params": self.params}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocessor:
        if not isinstance(d, dict) or "kind" not in d:
            raise ValueError(f"Not a preprocessing description: {d!r}.")
        return cls(d["kind"], dict(d.get("params", {})))
