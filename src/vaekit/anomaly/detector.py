"""``VAEDetector``: a scikit-learn outlier detector built on a VAE.

Train on normal data (``fit``), then score new rows: ``score_samples`` (higher = more
normal, scikit-learn's convention), ``anomaly_score`` (higher = more anomalous, PyOD's
convention), ``decision_function`` (negative = outlier) and ``predict`` (-1 / +1). PyOD's
fitted attributes and methods are there too (``decision_scores_``, ``threshold_``,
``labels_``, ``predict_proba``, ``predict_confidence``), and ``explain`` gives each
feature's share of a row's score.
scikit-learn is needed (``pip install vaekit[anomaly]``); it is imported when this
module is.
"""

from __future__ import annotations

import functools
import math
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

try:
    from sklearn.base import BaseEstimator, OutlierMixin
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as e:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError("vaekit.VAEDetector needs scikit-learn: pip install 'vaekit[anomaly]'.") from e

from ..core import VAE, Gaussian, StandardNormal, elbo
from ..nets import MLP
from ..runs import serialization as _serialization
from ..training import Source, default_optimizer
from . import _ensemble
from . import scores as anomaly

FORMAT_VERSION = 1
SCALERS = ("robust", "standard")
_MIN_ROWS = 10
_CLIP = 1e4  # scaled features are clipped to +-_CLIP so scores stay finite
_EXTRA = "train_scores.eqx"  # decision_scores_ and feature_baseline_ of a saved detector
_CHUNK = 8192  # rows read, scaled and scored at a time (constant memory for large inputs)
_PROGRESS_ROWS = 200_000  # inputs with at least this many rows show a progress bar


class Explanation(NamedTuple):
    """Result of :meth:`VAEDetector.explain` for ``n`` rows of ``d`` features.

    :ivar contributions: ``[n, d]`` each feature's contribution to the row's anomaly
        score, nats, relative to its median on the training rows (0 = typical; large
        and positive = this feature makes the row anomalous).
    :ivar top_features: ``[n, k]`` feature indices, the largest contribution first.
    """

    contributions: np.ndarray
    top_features: np.ndarray


def _tanh(x):
    return jnp.tanh(x)


def _identity(x):
    return x


def _neg_elbo(model, x, key, step):
    """Training loss (module level, so compiled epochs are reused between fits)."""
    return -elbo(model, x, key)


@functools.lru_cache(maxsize=8)
def _optimizer(learning_rate: float):
    return default_optimizer(learning_rate)


def _auto_sizes(n_features: int, latent_dim: int | None, hidden: Any) -> tuple[int, tuple[int, ...]]:
    lat = int(latent_dim) if latent_dim is not None else int(np.clip(n_features // 2, 2, 16))
    if hidden is None:
        w = int(np.clip(4 * n_features, 32, 256))
        hid: tuple[int, ...] = (w, w)
    elif isinstance(hidden, int | np.integer):
        hid = (int(hidden),)
    else:
        hid = tuple(int(h) for h in hidden)
    return lat, hid


def build_model(n_features: int, latent_dim: int, hidden: tuple[int, ...], key, variance: str = "shared") -> VAE:
    """The detector's VAE: MLP encoder (diagonal Gaussian q), ``N(0, I)`` prior, MLP
    decoder with a Gaussian likelihood whose per-feature scale is learned and shared
    by all rows (``variance="shared"``)."""
    k1, k2 = jax.random.split(key)
    enc = MLP(n_features, 2 * latent_dim, hidden, _tanh, _identity, key=k1)
    out = {"diag": 2 * n_features, "scalar": n_features + 1}.get(variance, n_features)
    dec = MLP(latent_dim, out, hidden[::-1], _tanh, _identity, key=k2)
    return VAE(
        StandardNormal(latent_dim),
        Gaussian(enc, "diag"),
        Gaussian(dec, variance, size=n_features) if variance == "shared" else Gaussian(dec, variance),
    )


def _fit_scaler(x: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    if kind == "robust":
        center = np.median(x, 0)
        q75, q25 = np.percentile(x, [75, 25], axis=0)
        scale = (q75 - q25) / 1.349  # IQR of N(0, 1)
        std = x.std(0)
        scale = np.where(scale > 1e-12 * (1 + np.abs(center)), scale, std)
    else:
        center = x.mean(0)
        scale = x.std(0)
    scale = np.where(scale > 1e-12 * (1 + np.abs(center)), scale, 1.0)
    return center.astype(np.float64), scale.astype(np.float64)


class VAEDetector(OutlierMixin, BaseEstimator):
    """Outlier detector: an ensemble of VAEs trained on (mostly) normal rows.

    ``fit(X)`` scales the features, trains ``n_models`` VAEs with early stopping on a
    validation split, and sets ``offset_`` (the ``contamination`` quantile of the
    training rows' ``score_samples``). New rows are scored by the chosen
    :mod:`vaekit.anomaly` ``method``, averaged over the ensemble.

    Defaults: one configuration for all data, no per-dataset tuning: robust scaling
    (median and IQR/1.349; zero IQR falls back to the standard deviation, a constant
    column to 1; scaled values clipped at +-1e4), two tanh hidden layers of width
    ``clip(4 d, 32, 256)`` and ``clip(d // 2, 2, 16)`` latent dimensions for ``d``
    features, a Gaussian decoder with a learned per-feature variance (``"shared"``), the
    negative-ELBO score with 64 latent samples, Adam with early stopping on a validation
    split, and an ensemble of 3 VAEs. BENCHMARKS.md ("VAEDetector: how the defaults were
    chosen") has the measurements behind each choice.

    :param method: score, one of :data:`vaekit.anomaly.METHODS`.
    :param contamination: sets ``threshold_`` as a quantile of the training rows' scores:
        the expected fraction of outliers in ``(0, 0.5]``, or ``"auto"``, which here means
        0.01 (1% of the training rows score above ``threshold_``). scikit-learn's
        ``"auto"`` is a fixed offset on each estimator's own score scale (-0.5 for
        ``IsolationForest``, -1.5 for ``LocalOutlierFactor``); PyOD's default is 0.1.
        For clean training data prefer ``false_alarm_rate``.
    :param n_models: ensemble size.
    :param latent_dim: latent dimensions (``None``: scaled to the features).
    :param hidden: hidden widths, e.g. ``(64, 64)`` (``None``: scaled to the features).
    :param scaler: ``"robust"`` or ``"standard"``.
    :param max_steps: upper bound on optimizer steps per model (rounded up to whole
        epochs).
    :param patience: optimizer steps without validation improvement before stopping
        (rounded up to whole epochs; the validation loss is computed once per epoch).
    :param variance: decoder variance, ``"shared"`` (per feature), ``"diag"`` (per row
        and feature) or ``"scalar"`` (one per row).
    :param batch_size: training batch size (capped at the training-set size).
    :param learning_rate: Adam step size.
    :param validation_fraction: share of training rows held out for early stopping.
    :param n_samples: latent samples per row for the stochastic scores.
    :param random_state: int seed (same seed, same data: same scores) or ``None``.
    :param false_alarm_rate: instead of ``contamination``, set ``threshold_`` so that
        about this fraction of new *normal* rows is flagged: the split-conformal quantile
        (rank ``ceil((n_v + 1)(1 - rate))``) of the scores of the ``n_v`` validation rows,
        which no member trained on. Needs clean (all-normal) training rows.

    Fitted attributes (PyOD's names): ``decision_scores_`` (anomaly scores of the
    training rows), ``threshold_`` (rows scoring above it are outliers), ``labels_``
    (0 inlier, 1 outlier, for the training rows); ``offset_ = -threshold_`` is
    scikit-learn's.
    """

    def __init__(
        self,
        method: str = "elbo",
        contamination: str | float = "auto",
        *,
        n_models: int = 3,
        latent_dim: int | None = None,
        hidden: Any = None,
        scaler: str = "robust",
        max_steps: int = 3000,
        patience: int = 500,
        variance: str = "shared",
        batch_size: int = 64,
        learning_rate: float = 1e-3,
        validation_fraction: float = 0.2,
        n_samples: int = 64,
        random_state: int | None = None,
        false_alarm_rate: float | None = None,
    ):
        self.method = method
        self.contamination = contamination
        self.n_models = n_models
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.scaler = scaler
        self.max_steps = max_steps
        self.patience = patience
        self.variance = variance
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.validation_fraction = validation_fraction
        self.n_samples = n_samples
        self.random_state = random_state
        self.false_alarm_rate = false_alarm_rate

    # ------------------------------------------------------------------ checks
    def _check_params(self) -> None:
        anomaly.check_method(self.method)
        c = self.contamination
        if not (isinstance(c, str) and c == "auto"):
            if isinstance(c, str) or not (isinstance(c, int | float | np.number) and 0 < c <= 0.5):
                raise ValueError(f"contamination must be in (0, 0.5] or 'auto', got {c!r}.")
        if self.scaler not in SCALERS:
            raise ValueError(f"Unknown scaler={self.scaler!r}. Valid values: 'robust', 'standard'.")
        if self.variance not in ("shared", "diag", "scalar"):
            raise ValueError(f"Unknown variance={self.variance!r}. Valid values: 'shared', 'diag', 'scalar'.")
        for name in ("n_models", "max_steps", "patience", "batch_size", "n_samples"):
            v = getattr(self, name)
            if not isinstance(v, int | np.integer) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}.")
        if not 0 < self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in (0, 1), got {self.validation_fraction!r}.")
        far = self.false_alarm_rate
        if far is not None:
            if isinstance(far, bool | str) or not (isinstance(far, int | float | np.number) and 0 < far < 1):
                raise ValueError(f"false_alarm_rate must be None or in (0, 1), got {far!r}.")
            if not (isinstance(c, str) and c == "auto"):
                raise ValueError(
                    f"Pass either false_alarm_rate ({far!r}) or contamination ({c!r}), not both: "
                    "both set the threshold."
                )

    def _validate(self, X: Any, reset: bool) -> np.ndarray:
        try:
            x = validate_data(self, X, reset=reset, dtype=np.float64, ensure_min_samples=_MIN_ROWS if reset else 1)
        except ValueError as e:
            msg = str(e)
            if "could not convert" in msg or "convert string" in msg:
                raise TypeError(
                    f"VAEDetector needs numeric features: {msg}. Encode categorical columns "
                    "(e.g. one-hot) or drop them first."
                ) from None
            if "NaN" in msg or "infinity" in msg:
                raise ValueError(
                    f"{msg.splitlines()[0]} VAEDetector does not impute: remove or impute the "
                    "NaN/inf values first (e.g. sklearn.impute.SimpleImputer in a Pipeline)."
                ) from None
            if "minimum of" in msg and reset:
                n = np.shape(X)[0] if hasattr(X, "shape") or isinstance(X, list) else "?"
                raise ValueError(
                    f"VAEDetector needs at least {_MIN_ROWS} training rows, got n_samples={n}. ({msg})"
                ) from None
            raise
        return x

    def _scale(self, x: np.ndarray) -> np.ndarray:
        return np.clip((x - self.center_) / self.scale_, -_CLIP, _CLIP).astype(np.float32)

    # --------------------------------------------------------------------- fit
    def fit(self, X: Any, y: Any = None) -> VAEDetector:
        """Train on ``X [n_rows, n_features]`` (normal data; ``y`` is ignored).

        The ``n_models`` VAEs are stacked and trained together (one compiled loop,
        ``vmap`` over the members) on the same training/validation split; each member
        has its own initialization, shuffling and noise, and stops early on its own
        validation loss. Then sets ``decision_scores_`` (the training rows' anomaly
        scores), ``threshold_``, ``labels_`` and ``offset_``.
        """
        self._check_params()
        x = self._validate(X, reset=True)
        self.center_, self.scale_ = _fit_scaler(x, self.scaler)
        xs = self._scale(x)
        seed = (
            int(np.random.randint(0, 2**31 - 1))
            if self.random_state is None
            else int(np.random.RandomState(self.random_state).randint(0, 2**31 - 1))
        )
        self.seed_ = seed
        d = x.shape[1]
        lat, hid = _auto_sizes(d, self.latent_dim, self.hidden)
        self.latent_dim_, self.hidden_ = lat, hid
        k_init, k_split, k_fit = jax.random.split(jax.random.key(seed), 3)
        n = xs.shape[0]
        n_val = min(n - 1, max(1, round(self.validation_fraction * n)))
        perm = np.asarray(jax.random.permutation(k_split, n))
        xv, xt = xs[perm[:n_val]], xs[perm[n_val:]]
        bs = int(min(self.batch_size, xt.shape[0]))
        spe = max(1, xt.shape[0] // bs)  # optimizer steps per epoch
        variance = self.variance
        stacked = eqx.filter_vmap(lambda k: build_model(d, lat, hid, k, variance))(
            jax.random.split(k_init, int(self.n_models))
        )
        stacked, epochs, _ = _ensemble.train(
            stacked,
            xt,
            xv,
            k_fit,
            optimizer=_optimizer(float(self.learning_rate)),
            batch_size=bs,
            max_epochs=max(1, -(-int(self.max_steps) // spe)),
            patience=max(1, -(-int(self.patience) // spe)),
        )
        epochs = np.asarray(epochs)
        if (epochs == 0).any():
            raise ValueError(
                "VAEDetector: training diverged (the validation loss was never finite). Lower "
                "learning_rate, or check the data for extreme values."
            )
        self.ensemble_ = stacked
        self.models_ = [_ensemble.member(stacked, i) for i in range(int(self.n_models))]
        self.n_epochs_ = [int(e) for e in epochs]
        self.decision_scores_, feat = self._evaluate(x, None, "score training rows", features=True)
        self._set_threshold(self.decision_scores_[perm[:n_val]])
        self.feature_baseline_ = np.median(np.asarray(feat), 0)
        return self

    def _set_threshold(self, val_scores: np.ndarray) -> None:
        """``threshold_`` from ``contamination`` (a quantile of ``decision_scores_``) or
        from ``false_alarm_rate`` (a conformal quantile of the validation rows' scores)."""
        far = self.false_alarm_rate
        if far is not None:
            n_v = len(val_scores)
            k = math.ceil((n_v + 1) * (1 - float(far)))  # split-conformal rank
            if k > n_v:
                warnings.warn(
                    f"VAEDetector: the validation split has {n_v} rows, too few to guarantee "
                    f"false_alarm_rate={far} (needs at least {math.ceil(1 / float(far)) - 1}); the "
                    "threshold is the largest validation score. Use more training rows or a "
                    "larger validation_fraction.",
                    UserWarning,
                    stacklevel=3,
                )
                k = n_v
            self.threshold_ = float(np.sort(val_scores)[k - 1])
        else:
            c = 0.01 if self.contamination == "auto" else float(self.contamination)
            self.threshold_ = float(np.percentile(self.decision_scores_, 100.0 * (1 - c)))
        self.offset_ = -self.threshold_
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(int)

    # ----------------------------------------------------------------- scoring
    def _chunks(self, X: Any, progress: bool | None, what: str):
        """Validated, scaled float32 chunks ``[<= _CHUNK, d]`` of ``X``: an array (a
        memory-mapped ``.npy`` is read chunk by chunk), a :class:`vaekit.Source`, or
        anything scikit-learn accepts. Yields ``(n_rows, chunks)``."""
        checked = False
        if isinstance(X, Source) and not isinstance(X, np.ndarray):
            n, src = len(X), X

            def read(a: int, b: int) -> Any:
                return np.asarray(src.read(np.arange(a, b)))
        else:
            if isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype.kind in "fiu" and len(X) > _CHUNK:
                arr = X  # read (e.g. from a memory map) and checked chunk by chunk
            else:
                arr = self._validate(X, reset=False)
                checked = True
            n = len(arr)

            def read(a: int, b: int) -> Any:
                return arr[a:b]

        show = n >= _PROGRESS_ROWS if progress is None else progress
        bar = None
        if show:
            from tqdm.auto import tqdm

            bar = tqdm(total=n, desc=what, unit="row", file=sys.stderr, dynamic_ncols=True)

        def gen():
            try:
                for a in range(0, n, _CHUNK):
                    xb = read(a, min(n, a + _CHUNK))
                    if not checked:
                        xb = self._validate(xb, reset=False)
                    yield self._scale(xb)
                    if bar is not None:
                        bar.update(len(xb))
            finally:
                if bar is not None:
                    bar.close()

        return n, gen()

    def anomaly_score(self, X: Any, *, progress: bool | None = None) -> np.ndarray:
        """Higher = more anomalous (PyOD's convention): ``[n_rows]`` float64, the mean of
        the members' scores.

        ``X`` may be larger than memory (a memory-mapped ``.npy``, a
        :class:`vaekit.Source`): it is read and scored ``8192`` rows at a time.
        ``progress``: show a progress bar (``None``: for 200,000 rows or more)."""
        return self._evaluate(X, progress, "score")[0]

    def _stacked(self):
        st = getattr(self, "ensemble_", None)
        if st is None:  # e.g. attributes copied from another detector
            st = self.ensemble_ = _ensemble.stack(self.models_)
        return st

    def _evaluate(self, X: Any, progress: bool | None, what: str, features: bool = False):
        """``(anomaly scores [n], per-feature nll [n, d] or None)``, both means over the
        members. The ``elbo`` score and the per-feature terms come from one pass (the
        score is the sum of the per-feature terms plus the KL term)."""
        check_is_fitted(self, "models_")
        stacked = self._stacked()
        key = jax.random.key(self.seed_ ^ 0x5EED)
        L, M = int(self.n_samples), len(self.models_)
        fused = self.method == "elbo" or features
        block = _ensemble.block_rows(self.method, L, M)
        n, chunks = self._chunks(X, progress, what)
        out = np.empty(n)
        feat = np.empty((n, int(self.n_features_in_))) if features else None
        i = 0
        for xc in chunks:
            for a, b in _ensemble.blocks(len(xc), block):
                if fused:
                    nll, kl = _ensemble.parts(stacked, xc[a:b], key, L, block)
                    nll = np.asarray(nll, dtype=np.float64)
                    if feat is not None:
                        feat[i + a : i + b] = nll.mean(0)
                    s_elbo = nll.sum(2) + np.asarray(kl, dtype=np.float64)
                    if self.method == "elbo":
                        out[i + a : i + b] = s_elbo.mean(0)
                if self.method != "elbo":
                    s = _ensemble.score(stacked, xc[a:b], key, self.method, L, block)
                    out[i + a : i + b] = np.asarray(s, np.float64).mean(0)
            i += len(xc)
        return out, feat

    def explain(self, X: Any, top: int = 3, *, progress: bool | None = None) -> Explanation:
        """Each feature's contribution to each row's anomaly score.

        For the factorized Gaussian decoder, feature ``j``'s contribution is
        ``-(1/L) sum_l log p(x_j | z_l)`` (``z_l ~ q(z|x)``, ``L = n_samples``, mean over
        the ensemble) minus its median over training rows; the reconstruction part of
        the ``elbo`` score is the sum over features (the KL term is not per feature).

        :param X: ``[n, d]`` rows (or a large input, as for :meth:`anomaly_score`).
        :param top: how many feature indices to return per row (at most ``d``).
        :returns: :class:`Explanation` ``(contributions [n, d], top_features [n, top])``.
        """
        check_is_fitted(self, "models_")
        if isinstance(top, bool) or not isinstance(top, int | np.integer) or top < 1:
            raise ValueError(f"top must be a positive int, got {top!r}.")
        top = min(int(top), int(self.n_features_in_))
        baseline = getattr(self, "feature_baseline_", None)
        if baseline is None:
            raise ValueError(
                "This detector was saved by an older vaekit without the training baseline that "
                "explain() needs; fit it again."
            )
        contrib = self._evaluate(X, progress, "explain", features=True)[1] - baseline
        order = np.argsort(-contrib, axis=1, kind="stable")[:, :top]
        return Explanation(contrib, order)

    def score_samples(self, X: Any) -> np.ndarray:
        """Higher = more normal (scikit-learn's convention): ``-anomaly_score(X)``."""
        return -self.anomaly_score(X)

    def decision_function(self, X: Any) -> np.ndarray:
        """``score_samples(X) - offset_`` (= ``threshold_ - anomaly_score(X)``): negative
        for outliers. (PyOD's ``decision_function`` is :meth:`anomaly_score`.)"""
        return self.score_samples(X) - self.offset_

    def predict(self, X: Any) -> np.ndarray:
        """``-1`` for outliers (``anomaly_score > threshold_``), ``+1`` for inliers."""
        return np.where(self.decision_function(X) >= 0, 1, -1)

    # ------------------------------------------------------------ PyOD methods
    def _train_scores(self) -> np.ndarray:
        check_is_fitted(self, "models_")
        s = getattr(self, "decision_scores_", None)
        if s is None:
            raise ValueError(
                "This detector was saved by an older vaekit without its training scores "
                "(decision_scores_), which predict_proba and predict_confidence need; fit it again."
            )
        return s

    def predict_proba(self, X: Any, method: str = "linear", return_confidence: bool = False):
        """Outlier probability as in PyOD's ``BaseDetector.predict_proba``: ``[n, 2]``
        (``[:, 0]`` inlier, ``[:, 1]`` outlier).

        ``"linear"``: the anomaly score min-max scaled by the training scores
        (``decision_scores_``), clipped to ``[0, 1]``. ``"unify"`` (Kriegel et al. 2011):
        ``erf((s - mean) / (std sqrt 2))`` of the training scores' mean and standard
        deviation, clipped to ``[0, 1]``. ``return_confidence=True`` also returns
        :meth:`predict_confidence`.
        """
        from scipy.special import erf

        train = self._train_scores()
        if method not in ("linear", "unify"):
            raise ValueError(f"Unknown method={method!r} for predict_proba. Valid values: 'linear', 'unify'.")
        s = self.anomaly_score(X)
        if method == "linear":
            lo, hi = float(train.min()), float(train.max())
            p = (s - lo) / (hi - lo) if hi > lo else (s > hi).astype(float)
        else:
            sd = float(train.std())
            p = erf((s - float(train.mean())) / ((sd if sd > 0 else 1.0) * np.sqrt(2)))
        p = np.clip(p, 0.0, 1.0)
        probs = np.stack([1.0 - p, p], axis=1)
        return (probs, self._confidence(s)) if return_confidence else probs

    def predict_confidence(self, X: Any) -> np.ndarray:
        """Confidence in each row's label, as in PyOD's ``predict_confidence`` (ExCeeD,
        Perini et al. 2020): ``[n]`` in ``[0, 1]``, how consistently the label would stay
        the same if the training set were perturbed."""
        self._train_scores()
        return self._confidence(self.anomaly_score(X))

    def _confidence(self, s: np.ndarray) -> np.ndarray:
        from scipy.stats import binom

        train = np.sort(self._train_scores())
        n = len(train)
        n_instances = np.searchsorted(train, s, side="right")  # training scores <= s
        post = (1.0 + n_instances) / (2.0 + n)
        contam = float(np.sum(self.labels_)) / n if isinstance(self.contamination, str) else float(self.contamination)
        conf = 1.0 - binom.cdf(n - int(n * contam), n, post)
        outlier = s > self.threshold_
        return np.where(outlier, conf, 1.0 - conf)

    # ------------------------------------------------------------- save / load
    def __vaekit_save__(self, path: str | os.PathLike) -> None:
        """Write ``path/vaekit.json`` (parameters, scaler, offset, file checksums) and
        ``path/model_<i>.eqx`` (equinox leaves); no pickle. ``path`` must not exist or
        be an empty folder.

        Atomic: everything is written into a temporary folder next to ``path``, which is
        renamed to ``path`` only when complete; on failure (disk full) it is removed.
        """
        from ..training import checkpoints as vio

        check_is_fitted(self, "models_")
        path = Path(os.path.abspath(os.fspath(path)))
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise FileExistsError(f"{path} already exists and is not an empty folder; choose a new path.")
        meta = {
            "kind": "detector",
            "format_version": FORMAT_VERSION,
            "params": _jsonable(self.get_params()),
            "n_features_in": int(self.n_features_in_),
            "latent_dim": int(self.latent_dim_),
            "hidden": list(self.hidden_),
            "center": self.center_.tolist(),
            "scale": self.scale_.tolist(),
            "offset": float(self.offset_),
            "seed": int(self.seed_),
            "n_epochs": [int(e) for e in self.n_epochs_],
            "models": [f"model_{i}.eqx" for i in range(len(self.models_))],
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        try:
            os.chmod(tmp, 0o777 & ~vio.umask())  # mkdtemp creates 0700
            meta["sha256"] = {name: vio.write_leaves(tmp / name, m) for name, m in zip(meta["models"], self.models_)}
            extra = self._extra_arrays()
            if extra is not None:  # training scores and explain() baseline (since issue 15)
                meta["extra"] = {
                    "file": _EXTRA,
                    "n_rows": len(extra["decision_scores"]),
                    "sha256": vio.write_leaves(tmp / _EXTRA, extra),
                }
            vio.write_json(tmp / "vaekit.json", meta)
            os.rename(tmp, path)  # replaces an empty folder on POSIX
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            if e.errno is None or not e.filename:
                raise
            raise OSError(e.errno, e.strerror, str(e.filename).replace(str(tmp), str(path))) from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _extra_arrays(self) -> dict[str, np.ndarray] | None:
        s, b = getattr(self, "decision_scores_", None), getattr(self, "feature_baseline_", None)
        if s is None or b is None:
            return None
        return {"decision_scores": np.asarray(s, np.float64), "feature_baseline": np.asarray(b, np.float64)}

    @classmethod
    def __vaekit_load__(cls, path: str | os.PathLike) -> VAEDetector:
        """Load and validate a saved detector: every field of ``vaekit.json`` is checked
        against the others and against the model files (sizes, checksums) before anything
        is allocated."""
        from ..training import checkpoints as vio

        path = os.fspath(path)
        meta_path = os.path.join(path, "vaekit.json")
        if not os.path.isfile(meta_path):
            raise FileNotFoundError(f"{meta_path} not found: {path} is not a saved VAEDetector.")
        meta = vio.read_json(meta_path)

        def corrupt(what: str) -> ValueError:
            return ValueError(
                f"{meta_path}: {what}; the detector folder is corrupt or was edited. Fit and save the detector again."
            )

        if not isinstance(meta, dict):
            raise corrupt("not a JSON object")
        if meta.get("kind") != "detector":
            raise ValueError(f"{path} holds a {meta.get('kind')!r}, not a detector.")
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{path} has detector format_version {meta.get('format_version')!r}; this vaekit "
                f"reads version {FORMAT_VERSION}."
            )
        params = meta.get("params")
        if not isinstance(params, dict):
            raise corrupt("'params' is not a table of parameters")
        params = dict(params)
        if isinstance(params.get("hidden"), list):
            params["hidden"] = tuple(params["hidden"])
        try:
            det = cls(**params)
            det._check_params()
        except (TypeError, ValueError) as e:
            raise corrupt(f"bad 'params' ({e})") from None

        def posint(name, v, most=10**7):
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= most:
                raise corrupt(f"{name}={v!r} is not an int in [1, {most}]")
            return v

        d = posint("n_features_in", meta.get("n_features_in"))
        lat = posint("latent_dim", meta.get("latent_dim"), 10**5)
        hid = meta.get("hidden")
        if not isinstance(hid, list) or not hid:
            raise corrupt(f"hidden={hid!r} is not a list of layer widths")
        hid = tuple(posint("hidden width", h, 10**5) for h in hid)
        arrays = {}
        for name in ("center", "scale"):
            v = meta.get(name)
            if (
                not isinstance(v, list)
                or len(v) != d
                or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in v)
            ):
                raise corrupt(
                    f"{name!r} must hold {d} numbers (n_features_in), got {len(v) if isinstance(v, list) else type(v).__name__}"
                )
            arrays[name] = np.asarray(v, dtype=np.float64)
            if not np.isfinite(arrays[name]).all():
                raise corrupt(f"{name!r} has non-finite values")
        if (arrays["scale"] <= 0).any():
            raise corrupt("'scale' has values <= 0")
        offset, seed = meta.get("offset"), meta.get("seed")
        if not isinstance(offset, int | float) or isinstance(offset, bool) or not np.isfinite(offset):
            raise corrupt(f"offset={offset!r} is not a finite number")
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise corrupt(f"seed={seed!r} is not a non-negative int")
        names = meta.get("models")
        if not isinstance(names, list) or not names:
            raise corrupt("'models' lists no model files")
        for name in names:
            if (
                not isinstance(name, str)
                or os.path.basename(name) != name
                or not name.endswith(".eqx")
                or name.startswith(".")
            ):
                raise corrupt(f"model file name {name!r} is not a plain .eqx file name")
        if len(set(names)) != len(names):
            raise corrupt("'models' names a file twice")
        n_epochs = meta.get("n_epochs")
        if (
            not isinstance(n_epochs, list)
            or len(n_epochs) != len(names)
            or not all(isinstance(e, int) for e in n_epochs)
        ):
            raise corrupt(f"'n_epochs' must hold one int per model ({len(names)})")
        sums = meta.get("sha256")  # absent in detectors saved before checksums: read unchecked
        if sums is not None and (not isinstance(sums, dict) or set(sums) != set(names)):
            raise corrupt("'sha256' does not list a checksum for each model file")
        # the sizes the model files must have, from the shapes alone (nothing allocated)
        try:
            shapes = eqx.filter_eval_shape(lambda k: build_model(d, lat, hid, k, det.variance), jax.random.key(0))
        except Exception as e:  # noqa: BLE001 - any failure means inconsistent fields
            raise corrupt(f"its sizes do not describe a model ({type(e).__name__})") from None
        leaves = [a for a in jax.tree.leaves(shapes) if hasattr(a, "shape")]
        need = sum(int(np.prod(a.shape)) * np.dtype(a.dtype).itemsize for a in leaves)
        for name in names:
            f = os.path.join(path, name)
            if not os.path.isfile(f):
                raise corrupt(f"model file {name} is missing")
            size = os.path.getsize(f)
            if not need <= size <= need + 256 * len(leaves):
                raise ValueError(
                    f"{f} has {size} bytes but vaekit.json describes a model of {need} bytes of "
                    "arrays: the file is truncated or does not belong to this detector. Fit and save "
                    "the detector again."
                )
        like = build_model(d, lat, hid, jax.random.key(0), det.variance)
        det.models_ = []
        for n in names:
            f = os.path.join(path, n)
            try:
                det.models_.append(vio.read_leaves(f, like, None if sums is None else sums[n], meta_path))
            except ValueError as e:
                if "checksum" in str(e):
                    raise
                raise ValueError(
                    f"{f} does not hold the model that {meta_path} describes (its arrays have other "
                    "shapes): the folder is corrupt or was edited. Fit and save the detector again."
                ) from None
        det.n_features_in_ = d
        det.latent_dim_, det.hidden_ = lat, hid
        det.center_, det.scale_ = arrays["center"], arrays["scale"]
        det.offset_ = float(offset)
        det.seed_ = seed
        det.n_epochs_ = list(n_epochs)
        det.threshold_ = -det.offset_
        extra = meta.get("extra")  # absent in detectors saved before issue 15
        if extra is not None:
            n_rows = extra.get("n_rows") if isinstance(extra, dict) else None
            if not isinstance(extra, dict) or extra.get("file") != _EXTRA or not isinstance(extra.get("sha256"), str):
                raise corrupt("'extra' does not name the training-scores file and its checksum")
            n_rows = posint("extra n_rows", n_rows, 10**10)
            like = {"decision_scores": np.zeros(n_rows), "feature_baseline": np.zeros(d)}
            f = os.path.join(path, _EXTRA)
            if not os.path.isfile(f):
                raise corrupt(f"{_EXTRA} is missing")
            arr = vio.read_leaves(f, like, extra["sha256"], meta_path)
            det.decision_scores_ = np.asarray(arr["decision_scores"], np.float64)
            det.feature_baseline_ = np.asarray(arr["feature_baseline"], np.float64)
            det.labels_ = (det.decision_scores_ > det.threshold_).astype(int)
        return det

    def save(self, path: str | os.PathLike) -> None:
        """Save to the folder ``path`` (see :meth:`__vaekit_save__`); ``vk.load`` reads it."""
        self.__vaekit_save__(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> VAEDetector:
        """Load a detector saved by :meth:`save`."""
        return cls.__vaekit_load__(path)


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in params.items():
        if isinstance(v, np.integer):
            v = int(v)
        elif isinstance(v, np.floating):
            v = float(v)
        elif isinstance(v, tuple):
            v = list(v)
        out[k] = v
    return out


# vk.save(detector, path) dispatches by type to the detector's own folder format.
_serialization.register_saver(VAEDetector, VAEDetector.__vaekit_save__)
