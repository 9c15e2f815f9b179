"""Data-aware defaults: the decoder likelihood and the preprocessing chosen from the data.

``vaekit train`` summarises (a sample of) the training split with :func:`summarize` and
calls :func:`choose` for every setting left at ``"auto"``. The rule:

============================  ==========================  ===============================
data                          likelihood                  preprocessing
============================  ==========================  ===============================
binary {0, 1}                 bernoulli                   none
grey-scale images in [0, 1]   bernoulli                   binarize at 0.5 (announced)
grey-scale images 0-255       bernoulli                   binarize at 127.5 (announced)
colour images                 continuous-bernoulli        none, or scale by 1/255
audio frames in [-1, 1]       gaussian                    none
other real-valued (tables)    gaussian with a learned     standardize (fitted on the
                              per-feature scale           training split)
============================  ==========================  ===============================

A likelihood set by the user gets the preprocessing that puts the data in its support
(bernoulli: binarize; continuous-bernoulli: none or scale; beta: clip into (0, 1);
gaussian, laplace, studentt: standardize for tables, none for images, audio and binary
data). A preprocessing set by the user gets the likelihood whose support holds the
preprocessed data. The result says in one line what was chosen and how to change it,
and what is thrown away (binarization, clipping).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .._validate import one_of

#: decoder likelihoods by name (``--likelihood``)
LIKELIHOODS = ("bernoulli", "continuous-bernoulli", "beta", "gaussian", "laplace", "studentt")
_LOC_SCALE = ("gaussian", "laplace", "studentt")
KINDS = ("binary", "image", "audio", "real")
CLIP_EPS = 1e-3


@dataclass(frozen=True)
class DataSummary:
    """What :func:`choose` needs to know about the training data.

    ``kind`` is ``"binary"`` (every value 0 or 1), ``"image"`` (an image shape and
    values in [0, 1] or 0-255), ``"audio"`` (frames of an audio folder in [-1, 1]) or
    ``"real"`` (anything else).
    """

    n: int
    shape: tuple[int, ...]
    kind: str
    lo: float
    hi: float
    integer: bool
    image_shape: tuple[int, ...] | None = None
    sample_rate: int | None = None

    @property
    def unit(self) -> bool:
        return self.lo >= 0 and self.hi <= 1

    @property
    def byte(self) -> bool:
        return self.integer and self.lo >= 0 and 1 < self.hi <= 255

    @property
    def grey(self) -> bool:
        return self.image_shape is not None and (len(self.image_shape) == 2 or self.image_shape[-1] == 1)

    def range_text(self) -> str:
        if self.kind == "binary":
            return "{0, 1}"
        if self.unit:
            return "in [0, 1]"
        if self.byte:
            return "0-255"
        if self.lo >= -1 and self.hi <= 1:
            return "in [-1, 1]"
        return f"in [{self.lo:.4g}, {self.hi:.4g}]"

    def describe(self) -> str:
        """E.g. ``1437x64 grey-scale images (8x8) in [0, 1]`` or ``120x4 real-valued``."""
        size = "×".join(map(str, (self.n, *self.shape)))
        if self.kind == "binary":
            what = "binary {0, 1}"
            if self.image_shape is not None:
                what = f"binary images ({'×'.join(map(str, self.image_shape))})"
            return f"{size} {what}"
        if self.kind == "image":
            colour = "grey-scale" if self.grey else "colour"
            return f"{size} {colour} images ({'×'.join(map(str, self.image_shape or ()))}) {self.range_text()}"
        if self.kind == "audio":
            rate = f", {self.sample_rate} Hz" if self.sample_rate else ""
            return f"{size} audio frames {self.range_text()}{rate}"
        return f"{size} {'integer' if self.integer else 'real'}-valued {self.range_text()}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["shape"] = list(self.shape)
        d["image_shape"] = None if self.image_shape is None else list(self.image_shape)
        d["description"] = self.describe()
        return d


def _all(a: np.ndarray, pred: Callable[[np.ndarray], np.ndarray], chunk: int = 1 << 20) -> bool:
    """``np.all(pred(a))``, a million elements at a time, stopping at the first chunk with a
    ``False`` (grey-scale images fail the "binary" and "integer" tests in their first rows)."""
    flat = a.reshape(-1)
    return all(bool(np.all(pred(flat[i : i + chunk]))) for i in range(0, flat.size, chunk))


def summarize(x: Any, meta: dict | None = None, n: int | None = None) -> DataSummary:
    """Summarise data ``x [rows, *shape]`` (a sample of the training split is enough).

    :param meta: the dataset's ``meta`` (``image_shape``, ``audio``, ``sample_rate``).
    :param n: number of rows of the whole split (default ``len(x)``).
    """
    meta = meta or {}
    a = np.asarray(x)
    if a.ndim < 2 or a.shape[0] == 0:
        raise ValueError(f"summarize needs data [rows, ...] with at least one row, got shape {a.shape}.")
    lo, hi = float(np.min(a)), float(np.max(a))
    integer = _all(a, lambda v: np.equal(np.mod(v, 1), 0))
    shape = tuple(int(s) for s in a.shape[1:])
    image_shape = meta.get("image_shape")
    if image_shape is None and len(shape) in (2, 3) and not meta.get("audio"):
        image_shape = shape
    image_shape = tuple(int(s) for s in image_shape) if image_shape is not None else None
    unit = lo >= 0 and hi <= 1
    byte = integer and lo >= 0 and hi <= 255
    if _all(a, lambda v: (v == 0) | (v == 1)):
        kind = "binary"
    elif meta.get("audio") and lo >= -1 and hi <= 1:
        kind = "audio"
    elif image_shape is not None and (unit or byte):
        kind = "image"
    else:
        kind = "real"
    rate = meta.get("sample_rate")
    return DataSummary(
        n=int(a.shape[0] if n is None else n),
        shape=shape,
        kind=kind,
        lo=lo,
        hi=hi,
        integer=integer,
        image_shape=image_shape,
        sample_rate=int(rate) if rate else None,
    )


@dataclass(frozen=True)
class Choice:
    """The resolved likelihood and preprocessing, and the line that announces them."""

    likelihood: str
    preprocessing: str
    preprocessing_options: dict[str, Any] = field(default_factory=dict)
    model_options: dict[str, Any] = field(default_factory=dict)
    from_data: tuple[str, ...] = ()
    discards: str | None = None
    notice: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["from_data"] = list(self.from_data)
        return d


def _needs(likelihood: str, s: DataSummary, what: str) -> ValueError:
    return ValueError(
        f"--likelihood {likelihood} needs {what}, but the data are {s.describe()}. Use "
        "--likelihood gaussian (the default for such data), or set --preprocessing yourself."
    )


def preprocessing_for(likelihood: str, s: DataSummary) -> tuple[str, dict[str, Any], str | None]:
    """``(kind, options, what is discarded or None)`` that puts the data in the likelihood's support."""
    one_of(likelihood, LIKELIHOODS, "likelihood")
    if likelihood == "bernoulli":
        if s.kind == "binary":
            return "none", {}, None
        if s.unit:
            return "binarize", {"threshold": 0.5}, "the grey levels"
        if s.byte:
            return "binarize", {"threshold": 127.5}, "the grey levels"
        raise _needs(likelihood, s, "binary data or values in [0, 1] or 0-255 to binarize")
    if likelihood == "continuous-bernoulli":
        if s.unit:
            return "none", {}, None
        if s.byte:
            return "scale", {"divisor": 255.0}, None
        raise _needs(likelihood, s, "values in [0, 1] (or 0-255)")
    if likelihood == "beta":
        if s.lo > 0 and s.hi < 1:
            return "none", {}, None
        if s.unit or s.byte:
            div = 1.0 if s.unit else 255.0
            return "clip", {"divisor": div, "eps": CLIP_EPS}, "exact 0s and 1s"
        raise _needs(likelihood, s, "values in [0, 1] (or 0-255)")
    if likelihood in _LOC_SCALE:
        if s.kind in ("binary", "audio") or (s.kind == "image" and s.unit):
            return "none", {}, None
        if s.kind == "image":
            return "scale", {"divisor": 255.0}, None
        return "standardize", {}, None
    raise AssertionError(f"likelihood={likelihood!r} has no preprocessing rule.")  # one_of above refused the others


def likelihood_for(preprocessing: str, s: DataSummary) -> str:
    """The likelihood whose support holds the data after ``preprocessing``."""
    if preprocessing in ("binarize", "dynamic"):
        return "bernoulli"
    if preprocessing == "clip":
        return "beta"
    if preprocessing == "none" and s.kind == "binary":
        return "bernoulli"
    if (preprocessing == "none" and s.kind == "image" and s.unit) or (preprocessing == "scale" and (s.unit or s.byte)):
        return "continuous-bernoulli"
    return "gaussian"


def auto(s: DataSummary) -> tuple[str, str, dict[str, Any], str | None]:
    """``(likelihood, preprocessing, options, discarded)`` for data that nobody configured."""
    if s.kind == "binary":
        lik = "bernoulli"
    elif s.kind == "image":
        lik = "bernoulli" if s.grey else "continuous-bernoulli"
    else:
        lik = "gaussian"
    return (lik, *preprocessing_for(lik, s))


_PRE_TEXT = {
    "none": "no preprocessing",
    "standardize": "standardize (mean and std of the training split)",
    "minmax": "min-max scaling (range of the training split)",
    "dynamic": "dynamic binarization (a fresh Bernoulli draw per batch)",
    "scale": "scale by 1/{divisor:g}",
    "clip": "clip into [{lo:g}, {hi:g}]",
    "binarize": "binarize at {threshold:g}",
}


def _pre_text(kind: str, options: dict[str, Any]) -> str:
    t = _PRE_TEXT.get(kind, kind)
    if kind == "clip":
        return t.format(lo=options.get("eps", CLIP_EPS), hi=1 - options.get("eps", CLIP_EPS))
    return t.format(**options) if "{" in t else t


def choose(
    s: DataSummary,
    likelihood: str = "auto",
    preprocessing: str = "auto",
    *,
    variance: bool = False,
) -> Choice:
    """Resolve ``"auto"`` likelihood/preprocessing for data summarised by ``s``.

    :param variance: the model takes a ``variance`` option that the user left unset;
        real-valued tables then get ``variance="shared"`` (a learned per-feature scale).
    :raises ValueError: a likelihood whose support the data cannot be put into.
    """
    from_data: list[str] = []
    options: dict[str, Any] = {}
    discards = None
    if likelihood == "auto" and preprocessing == "auto":
        likelihood, preprocessing, options, discards = auto(s)
        from_data += ["likelihood", "preprocessing"]
    elif preprocessing == "auto":
        preprocessing, options, discards = preprocessing_for(likelihood, s)
        from_data.append("preprocessing")
    else:
        if likelihood == "auto":
            likelihood = likelihood_for(preprocessing, s)
            from_data.append("likelihood")
        if preprocessing == "binarize":
            options = {"threshold": 127.5 if s.byte and not s.unit else 0.5}
            if s.kind != "binary":
                discards = "all but which side of the threshold each value is on"
        elif preprocessing == "clip":
            options = {"divisor": 255.0 if s.byte and not s.unit else 1.0, "eps": CLIP_EPS}
            discards = "exact 0s and 1s"
        elif preprocessing == "scale":
            options = {"divisor": 255.0 if s.hi > 1 else 1.0}
    model_options: dict[str, Any] = {}
    if variance and likelihood in _LOC_SCALE and s.kind == "real" and len(s.shape) == 1:
        model_options["variance"] = "shared"
        from_data.append("variance")
    dec = f"{likelihood} decoder" + (" with a learned per-feature scale" if model_options else "")
    pre = _pre_text(preprocessing, options)
    if discards:
        pre += f" (discards {discards})"
    if from_data:
        which = " and ".join(k for k in ("likelihood", "preprocessing") if k in from_data) or "decoder scale"
        hint = f"{which} chosen from the data; set --likelihood/--preprocessing to change"
        if preprocessing == "binarize" and "preprocessing" in from_data:
            hint += "; --likelihood continuous-bernoulli or beta keeps the intensities"
    else:
        hint = "as set"
    notice = f"data: {s.describe()} → {pre}, {dec} ({hint})"
    return Choice(likelihood, preprocessing, options, model_options, tuple(from_data), discards, notice)
