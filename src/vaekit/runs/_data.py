"""The data of a run: the training and validation splits in model space with the
preprocessing fitted on them, and any split of the run's data loaded the same way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from ..core import as_data
from ..data import Preprocessor, datasets
from ..data.defaults import choose, summarize
from ..training import Source
from ..training import checkpoints as ckpt
from ..zoo import presets
from .config import DEFAULT_BATCH_SIZE, data_kwargs


class RunData:
    """Training/validation data in model space, labels, and the fitted preprocessing.

    Streamed datasets (a :class:`vaekit.Source`) stay sources: the split is by index
    (:class:`vaekit.datasets.Subset`), the preprocessing is fitted on (up to
    ``FIT_SAMPLE`` examples of) the training part and applied on read (a ``Subset`` with
    a ``transform``). Sources that fit in ``MEMORY_CAP`` bytes are read into memory;
    larger ones stay on disk and ``vk.fit`` streams them.
    """

    FIT_SAMPLE = 20_000
    MEMORY_CAP = 2 * 2**30

    def __init__(self, cfg: dict[str, Any], *, new_defaults: bool = True, pre: Preprocessor | None = None):
        ds = datasets.load(cfg["data"], "train", limit=cfg["limit"], **data_kwargs(cfg))
        self.meta, self.name = ds.meta, ds.name
        x, y = ds.x, ds.y
        n = datasets.n_examples(x)
        self.fingerprint = ckpt.data_fingerprint(x)  # recorded in the run, checked on resume
        has_valid = "valid" in datasets.splits(cfg["data"])
        if cfg["val_fraction"] == 0:
            xv = yv = None
        elif has_valid:
            vs = datasets.load(cfg["data"], "valid", limit=cfg["limit"], **data_kwargs(cfg))
            xv, yv = vs.x, vs.y
        else:
            perm = np.random.default_rng(cfg["seed"]).permutation(n)
            n_val = max(1, int(round(cfg["val_fraction"] * n)))
            vi, ti = np.sort(perm[:n_val]), np.sort(perm[n_val:])
            xv, yv = _rows(x, vi), (None if y is None else y[vi])
            x, y = _rows(x, ti), (None if y is None else y[ti])
        _check_enough_data(cfg, n, len(x), None if xv is None else datasets.n_examples(xv))
        sample = x.read(np.arange(min(len(x), self.FIT_SAMPLE))) if _is_source(x) else x
        # Data-aware defaults (vaekit.data.defaults): "auto" likelihood/preprocessing from the data.
        self.summary = summarize(as_data(sample, "the training data"), self.meta, n)
        variance = new_defaults and "variance" not in cfg["model_options"] and _takes_shared_variance(cfg["model"])
        self.choice = choose(self.summary, cfg["likelihood"], cfg["preprocessing"], variance=variance)
        # a resumed run keeps the preprocessing it was trained with
        self.pre = pre or Preprocessor.fit(
            self.choice.preprocessing, sample, seed=cfg["seed"], **self.choice.preprocessing_options
        )
        # Dynamic binarization trains on the values in [0, 1], redrawn per batch.
        train = x if self.pre.kind == "dynamic" else _apply(self.pre, x)
        # Streamed sources stay on disk when they are larger than MEMORY_CAP bytes;
        # vk.fit then reads them chunk by chunk with prefetching.
        self.x = _maybe_materialize(train, self.MEMORY_CAP)
        self.xv = None if xv is None else _maybe_materialize(_apply(self.pre, xv), self.MEMORY_CAP)
        self.y, self.yv = y, yv

    @property
    def n_features(self):
        shape = tuple(self.x.example_shape) if _is_source(self.x) else tuple(self.x.shape[1:])
        return int(shape[0]) if len(shape) == 1 else tuple(int(s) for s in shape)


def _is_source(x) -> bool:
    return not isinstance(x, np.ndarray) and isinstance(x, Source)


def _maybe_materialize(x, cap: int):
    """``x`` as an in-memory array when it fits under ``cap`` bytes of float32, else the source."""
    if not _is_source(x):
        return x
    if 4 * len(x) * int(np.prod(x.example_shape)) <= cap:
        return datasets.materialize(x)
    return x


def _rows(x, idx):
    return datasets.Subset(x, idx) if _is_source(x) else x[idx]


def _apply(pre: Preprocessor, x):
    return datasets.Subset(x, transform=pre.transform) if _is_source(x) else pre.transform(x)


def _takes_shared_variance(model: str) -> bool:
    return model != "conv_vae" and "variance" in presets.valid_options(model)


def resolve_from_data(cfg: dict[str, Any], data: RunData, *, strict: bool = True) -> dict[str, Any]:
    """``cfg`` with what depends on the data resolved: likelihood, preprocessing (and the
    decoder variance they imply), the preset's width, and the batch size (checked; with
    ``strict=False``, for runs resumed from before the check, capped at the rows as then)."""
    ch = data.choice
    cfg = {
        **cfg,
        "likelihood": ch.likelihood,
        "preprocessing": ch.preprocessing,
        "model_options": {**cfg["model_options"], **ch.model_options},
    }
    if cfg["hidden"] is None:
        cfg["hidden"] = list(presets.default_hidden(cfg["model"]))
    n = datasets.n_examples(data.x)
    held = "" if data.xv is None or "valid" in datasets.splits(cfg["data"]) else f" after holding out {datasets.n_examples(data.xv)} for validation"
    if cfg["batch_size"] is None or not strict:
        cfg["batch_size"] = min(cfg["batch_size"] or DEFAULT_BATCH_SIZE, n)
    elif cfg["batch_size"] > n:
        raise ValueError(
            f"batch_size={cfg['batch_size']} is larger than the training split, which has {n} rows{held}. "
            f"Use --batch-size {n} or less."
        )
    return cfg


def _check_enough_data(cfg: dict[str, Any], n: int, n_train: int, n_val: int | None) -> None:
    """Too little data for the split is a clear error (not a ZeroDivisionError later)."""
    data = cfg["data"]
    if n == 0:
        raise ValueError(f"{data} has no training examples. Pass a data set with at least 2 rows.")
    if n_train == 0:
        raise ValueError(
            f"{data} has {n} training example(s): holding out val_fraction={cfg['val_fraction']} "
            "for validation leaves none to train on. Use more data, or pass --val-fraction 0 "
            "to train on all of it without validation."
        )
    if n_val == 0:
        raise ValueError(f"The validation split of {data} is empty. Pass --val-fraction 0 to train without one.")


class Split(NamedTuple):
    """Rows of a split of a run's data: ``x`` as stored, ``xm`` in model space."""

    dataset: datasets.Dataset  # the split (``meta``, ``name``; ``x`` may be a Source)
    rows: np.ndarray | None  # the rows read, or None for all of them
    x: np.ndarray  # [rows, *shape] float32, as stored
    xm: np.ndarray  # the same rows after the run's preprocessing
    y: np.ndarray | None  # their labels


def load_split(
    cfg: dict[str, Any],
    pre: Preprocessor | None,
    split: str,
    *,
    limit: int | None = None,
    rows: np.ndarray | Callable[[int, Any], np.ndarray] | None = None,
) -> Split:
    """Rows of ``split`` of the run's data (configured by ``cfg``), as stored and in model
    space (through ``pre``).

    :param limit: only the first ``limit`` rows of the split.
    :param rows: the rows to read (all by default), or ``rows(n, labels)`` choosing them
        from the size and the labels of the split.
    """
    ds = datasets.load(cfg["data"], split, limit=limit, **data_kwargs(cfg))
    if callable(rows):
        rows = np.asarray(rows(datasets.n_examples(ds.x), ds.y))
    if rows is None:
        x, y = datasets.materialize(ds.x), ds.y
    else:
        rows = np.asarray(rows)
        x = np.asarray(ds.x[rows], np.float32)
        y = None if ds.y is None else np.asarray(ds.y)[rows]
    xm = pre.transform(x) if pre is not None else x
    return Split(ds, rows, x, xm, y)
