"""Conditional and semi-supervised VAEs: side information ``y`` enters the encoder and
the decoder.

* :class:`ConditionalVAE` (Sohn, Lee & Yan 2015, "Learning Structured Output
  Representation using Deep Conditional Generative Models"): ``q(z|x, y)``,
  ``p(x|z, y)``, ``p(z)``. ``model.given(y)`` is an ordinary :class:`vaekit.VAE` for the
  batch ``y``, so the ELBO, the IWAE bound and the importance-sampled log-likelihood
  work on it unchanged (they are ``log p(x|y)`` bounds).
  ``vk.log_likelihood`` takes examples one by one: use :func:`log_likelihood` here, which
  groups the examples by ``y``.
* :class:`M2VAE` (Kingma, Rezende, Mohamed & Welling 2014, "Semi-Supervised Learning
  with Deep Generative Models", model M2): labels are a latent variable with a uniform
  prior and a classifier ``q(y|x)``; rows labelled ``-1`` are unlabelled.

The encoder and decoder networks take the flattened input with ``y`` appended: an
encoder network takes ``prod(data) + c`` values, a decoder network ``prod(latent) + c``
(``c`` = ``num_classes`` for integer labels, else the width of ``y``).

``vk.fit(model, x, y=labels)`` trains either model; ``vk.sample(model, key, n, y=...)``
draws ``x ~ p(x|z, y)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as nd
from jax.typing import ArrayLike
from jaxtyping import Array, PRNGKeyArray

from .._validate import int_at_least, positive_int
from ..core import VAE, AbstractVAE, Conditional, elbo, resolve

#: ``loss_fn(model, x, key, step) -> [batch]``, as in ``vk.fit``
LossFn = Callable[[Any, Array, PRNGKeyArray, Array], Array]


class Given(Conditional):
    """``inner`` with the condition ``y [batch, c]`` appended to every input.

    Inputs ``x [*batch, *input]`` are flattened to ``[*batch, prod(input)]``; ``y`` is
    broadcast over the leading batch axes (e.g. the latent samples ``[S, batch]``).
    """

    inner: Conditional
    y: Array

    def _input(self, x: ArrayLike, batch_ndim: int) -> Array:
        x = jnp.asarray(x)
        lead = x.shape[:batch_ndim]
        flat = jnp.reshape(x, (*lead, -1))
        y = jnp.broadcast_to(self.y, (*lead[: max(0, batch_ndim - 1)], *self.y.shape)) if batch_ndim else self.y[0]
        return jnp.concatenate([flat, y.astype(flat.dtype)], axis=-1)

    def dist(self, x: ArrayLike, batch_ndim: int = 1) -> nd.Distribution:
        return self.inner.dist(self._input(x, batch_ndim), batch_ndim)

    def mean(self, x: ArrayLike, batch_ndim: int = 1) -> Array:
        return self.inner.mean(self._input(x, batch_ndim), batch_ndim)

    def parameters(self, x: ArrayLike, batch_ndim: int = 1) -> dict[str, Array]:
        return self.inner.parameters(self._input(x, batch_ndim), batch_ndim)

    def support_check(self, y: Any) -> Any:
        return self.inner.support_check(y)


class ConditionalVAE(AbstractVAE):
    """A conditional VAE ``q(z|x, y) p(x|z, y) p(z)`` (Sohn et al. 2015).

    :param Prior prior: ``p(z)``.
    :param Conditional encoder: a conditional over latents whose network takes ``prod(data) + c`` values.
    :param Conditional decoder: a conditional over data whose network takes ``prod(latent) + c`` values.
    :param int num_classes: ``c`` for integer labels ``y [n]`` (one-hot encoded), or ``None``
        with ``cond_size=c`` for real-valued side information ``y [n, c]``.
    """

    num_classes: int | None = eqx.field(static=True, default=None)
    cond_size: int | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        if (self.num_classes is None) == (self.cond_size is None):
            raise ValueError(
                "ConditionalVAE needs exactly one of num_classes= (integer labels) or "
                "cond_size= (real-valued side information y [n, c])."
            )

    @property
    def width(self) -> int:
        """``c``: the values of ``y`` appended to the inputs of both networks."""
        return int(self.num_classes if self.num_classes is not None else self.cond_size)  # type: ignore[arg-type]

    def prior_dist(self) -> nd.Distribution:
        return resolve(self.prior).dist()

    def encode_condition(self, y: ArrayLike) -> Array:
        """``y`` as the float array ``[batch, c]`` the networks see (one-hot for labels)."""
        y = jnp.asarray(y)
        if self.num_classes is not None:
            return jax.nn.one_hot(y, self.num_classes, dtype=jnp.float32)
        return y.astype(jnp.float32).reshape(y.shape[0], -1)

    def given(self, y: ArrayLike) -> VAE:
        """The ordinary VAE ``q(z|x, y) p(x|z, y) p(z)`` for the batch ``y``."""
        c = self.encode_condition(y)
        return VAE(self.prior, Given(self.encoder, c), Given(self.decoder, c))

    def posterior(self, x: ArrayLike) -> nd.Distribution:
        raise ValueError("a ConditionalVAE needs y: use model.given(y).posterior(x) (vk.fit/vk.sample take y=).")

    def likelihood(self, z: ArrayLike, batch_ndim: int = 1) -> nd.Distribution:
        raise ValueError("a ConditionalVAE needs y: use model.given(y).likelihood(z) (vk.fit/vk.sample take y=).")

    @property
    def data_shape(self) -> tuple[int, ...]:
        return self.placeholder().data_shape

    def placeholder(self) -> VAE:
        """The VAE given one placeholder condition (for shape and support checks)."""
        return self.given(self._zero_y())

    def _zero_y(self) -> Array:
        return jnp.zeros((1,), jnp.int32) if self.num_classes is not None else jnp.zeros((1, self.width))

    # -- what vk.fit uses ---------------------------------------------------------------

    def check_condition(self, y: Any, n: int, name: str = "y") -> Array:
        """``y`` validated for ``n`` examples (clear errors), as stored for training."""
        a = np.asarray(y)
        if a.shape[:1] != (n,):
            raise ValueError(f"{name} must have one entry per example ({n}), got shape {a.shape}.")
        if self.num_classes is None:
            if a.dtype.kind not in "biuf" or a.reshape(n, -1).shape[1] != self.width or not np.isfinite(a).all():
                raise ValueError(
                    f"{name} must be finite numbers of shape [{n}, {self.width}] (cond_size={self.width}), "
                    f"got shape {a.shape} dtype {a.dtype}."
                )
            return jnp.asarray(a.reshape(n, -1), jnp.float32)
        return jnp.asarray(_labels(a, self.num_classes, name, allow_missing=self.allows_missing))

    allows_missing: bool = eqx.field(static=True, default=False)

    def condition_loss(self, loss_fn: LossFn) -> LossFn:
        """The loss of a batch ``(x, y)``: ``loss_fn`` on ``model.given(y)``."""
        return _given_loss(loss_fn)


def _labels(a: np.ndarray, num_classes: int, name: str, allow_missing: bool) -> np.ndarray:
    lo = -1 if allow_missing else 0
    ok = a.ndim == 1 and a.dtype.kind in "biu" or (a.dtype.kind == "f" and np.all(a == np.round(a)))
    if not ok or a.ndim != 1 or (a.size and (a.min() < lo or a.max() >= num_classes)):
        miss = " or -1 for an unlabelled example" if allow_missing else ""
        raise ValueError(
            f"{name} must be integer class labels [n] in 0..{num_classes - 1}{miss}; got "
            f"shape {a.shape}, dtype {a.dtype}"
            + (f", values {a.min()}..{a.max()}" if a.size and a.dtype.kind in "biuf" else "")
            + f". Map the labels to 0..{num_classes - 1} (or build the model with num_classes=)."
        )
    return a.astype(np.int32)


_GIVEN_LOSSES: dict[LossFn, LossFn] = {}  # holds the functions: no id reuse


def _given_loss(loss_fn: LossFn) -> LossFn:
    # one wrapper per loss, so fit's compiled epoch is reused across calls
    if loss_fn not in _GIVEN_LOSSES:

        def loss(m, batch, k, s):
            x, y = batch
            return loss_fn(m.given(y), x, k, s)

        _GIVEN_LOSSES[loss_fn] = loss
    return _GIVEN_LOSSES[loss_fn]


class M2VAE(ConditionalVAE):
    """Semi-supervised VAE M2 (Kingma et al. 2014): ``p(y) p(z) p(x|y, z)`` with a
    classifier ``q(y|x)`` (``classifier(x_flat) -> logits [num_classes]`` for one example).

    Loss per example (labels ``y = -1`` mark unlabelled rows): labelled
    ``-ELBO(x, y) - log p(y) - alpha * log q(y|x)``; unlabelled
    ``-sum_y q(y|x) (ELBO(x, y) + log p(y)) - H(q(y|x))``, the exact bound marginalising
    ``y``. ``alpha`` defaults to ``0.1 * n / n_labelled`` in the paper; here a field.
    """

    classifier: Callable[[Array], Array] = None  # type: ignore[assignment]
    alpha: float = eqx.field(static=True, default=1.0)
    allows_missing: bool = eqx.field(static=True, default=True)

    def class_logits(self, x: ArrayLike) -> Array:
        """``log q(y|x)``: ``[batch, num_classes]`` normalised log-probabilities."""
        x = jnp.asarray(x)
        flat = jnp.reshape(x, (x.shape[0], -1))
        return jax.nn.log_softmax(jax.vmap(resolve(self.classifier))(flat), -1)

    def predict(self, x: ArrayLike) -> Array:
        """The classifier's labels ``argmax q(y|x)``: ``[batch]``."""
        return jnp.argmax(self.class_logits(x), -1)

    def condition_loss(self, loss_fn: LossFn) -> LossFn:
        return _m2_loss(loss_fn)

    def epoch_metrics(self, val: Any = None) -> dict[str, float]:
        """Added to ``vk.fit``'s history after every epoch: ``val_accuracy``, the classifier's
        accuracy on the labelled rows of ``(x_val, y_val)`` (when given)."""
        if not isinstance(val, tuple):
            return {}
        x, y = val
        keep = np.asarray(y) >= 0
        if not keep.any():
            return {}
        return {"val_accuracy": accuracy(self, np.asarray(x)[keep], np.asarray(y)[keep])}


_M2_LOSSES: dict[LossFn, LossFn] = {}


def _m2_loss(loss_fn: LossFn) -> LossFn:
    if loss_fn in _M2_LOSSES:
        return _M2_LOSSES[loss_fn]

    def loss(m: M2VAE, batch, k, s):
        x, y = batch
        c = int(m.num_classes)  # type: ignore[arg-type]
        logq = m.class_logits(x)  # [B, C]
        log_prior = -jnp.log(c)
        # -ELBO(x, y') for every class y' (the same key for each: common random numbers)
        per_class = jax.vmap(lambda yc: loss_fn(m.given(jnp.full(x.shape[:1], yc)), x, k, s))(jnp.arange(c))  # [C, B]
        per_class = per_class.T - log_prior  # [B, C]: -log p(x, y', z) bound
        labelled = y >= 0
        yl = jnp.where(labelled, y, 0)
        sup = (
            jnp.take_along_axis(per_class, yl[:, None], 1)[:, 0]
            - m.alpha * jnp.take_along_axis(logq, yl[:, None], 1)[:, 0]
        )
        q = jnp.exp(logq)
        unsup = jnp.sum(q * per_class, -1) + jnp.sum(q * logq, -1)  # -(E_q[ELBO] + H(q))
        return jnp.where(labelled, sup, unsup)

    _M2_LOSSES[loss_fn] = loss
    return loss


def cvae(
    n_features: int | Sequence[int],
    *,
    key: PRNGKeyArray,
    num_classes: int = 10,
    latent_dim: int = 2,
    hidden: int | Sequence[int] = (500,),
    likelihood: str = "bernoulli",
    activation: Callable[[Array], Array] = jax.nn.tanh,
) -> ConditionalVAE:
    """An MLP conditional VAE (Sohn et al. 2015) for ``num_classes`` labels: Gaussian
    posterior, ``N(0, I)`` prior; ``n_features`` an int or the shape of one example."""
    from ..core import Gaussian, StandardNormal
    from ..nets import MLP
    from ..nets.mlp import widths
    from .presets import decoder_for

    int_at_least(num_classes, 2, "num_classes")
    positive_int(latent_dim, "latent_dim")
    shape = (n_features,) if isinstance(n_features, int) else tuple(n_features)
    k1, k2 = jax.random.split(key)
    enc = Gaussian(MLP(math.prod(shape) + num_classes, 2 * latent_dim, widths(hidden), activation, key=k1))
    dec = decoder_for(likelihood, latent_dim + num_classes, n_features, hidden, activation, k2)
    return ConditionalVAE(StandardNormal(latent_dim), enc, dec, num_classes=num_classes)


def m2(
    n_features: int | Sequence[int],
    *,
    key: PRNGKeyArray,
    num_classes: int = 10,
    latent_dim: int = 2,
    hidden: int | Sequence[int] = (500,),
    likelihood: str = "bernoulli",
    activation: Callable[[Array], Array] = jax.nn.tanh,
    alpha: float = 1.0,
) -> M2VAE:
    """An MLP M2 model (Kingma et al. 2014): the :func:`cvae` networks plus an MLP classifier
    ``q(y|x)`` with the same hidden widths; ``alpha`` weighs the labelled classification loss."""
    from ..nets import MLP
    from ..nets.mlp import widths

    k1, k2 = jax.random.split(key)
    base = cvae(
        n_features,
        key=k1,
        num_classes=num_classes,
        latent_dim=latent_dim,
        hidden=hidden,
        likelihood=likelihood,
        activation=activation,
    )
    n = n_features if isinstance(n_features, int) else math.prod(n_features)
    clf = MLP(n, num_classes, widths(hidden), activation, key=k2)
    return M2VAE(base.prior, base.encoder, base.decoder, num_classes=num_classes, classifier=clf, alpha=float(alpha))


def accuracy(model: M2VAE, x: ArrayLike, y: ArrayLike) -> float:
    """The classifier's accuracy on labelled ``x``, ``y``."""
    return float(jnp.mean(model.predict(x) == jnp.asarray(y)))


def log_likelihood(model: ConditionalVAE, x: ArrayLike, y: ArrayLike, key: PRNGKeyArray, **kw: Any) -> Array:
    """Importance-sampled ``log p(x|y)`` (:func:`vaekit.log_likelihood` of ``model.given(y)``):
    ``[batch]`` nats. ``vk.log_likelihood`` takes its examples one by one, so the examples
    are grouped by their value of ``y`` (example ``i`` of a group uses ``fold_in(key, i)``
    within that group)."""
    from ..core import log_likelihood as _ll

    x = jnp.asarray(x)
    ya = np.asarray(y)
    rows = ya.reshape(len(ya), -1)
    groups, inverse = np.unique(rows, axis=0, return_inverse=True)
    out = jnp.zeros(x.shape[0])
    for g in range(len(groups)):
        idx = np.nonzero(inverse.reshape(-1) == g)[0]
        yg = jnp.asarray(ya[idx[:1]])
        out = out.at[idx].set(_ll(model.given(yg), x[idx], key, **kw))
    return out


def conditional_elbo(model: ConditionalVAE, x: ArrayLike, y: ArrayLike, key: PRNGKeyArray, **kw: Any) -> Array:
    """``vk.elbo`` of ``log p(x|y)``: ``[batch]`` nats."""
    return elbo(model.given(y), x, key, **kw)


__all__ = ["M2VAE", "ConditionalVAE", "Given", "accuracy", "conditional_elbo", "cvae", "log_likelihood", "m2"]
