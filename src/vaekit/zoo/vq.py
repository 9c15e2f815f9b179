"""VQ-VAE (van den Oord, Vinyals & Kavukcuoglu 2017, "Neural Discrete Representation
Learning", arXiv 1711.00937).

The encoder network maps an example to ``P`` vectors of size ``D`` (``z_e [P, D]``);
each is replaced by its nearest codebook vector (``z_q``, codebook ``[K, D]``), and the
decoder reconstructs the example from ``z_q``. Training (:func:`vq_objective`, given
to ``vk.fit`` as ``objective=``) minimises, per example,

    -log p(x | z_e + stop_gradient(z_q - z_e)) + beta * ||z_e - stop_gradient(z_q)||^2

(straight-through gradients to the encoder, commitment loss with weight ``beta``). The
codebook is not trained by gradients: inside ``vk.fit``'s compiled step it follows the
exponential moving averages of the paper's appendix (decay ``gamma``, counts
Laplace-smoothed), through vaekit's stateful-module mechanism
(:mod:`vaekit.nets.stateful`): frozen outside training steps, kept in checkpoints and
``vk.save``. After every epoch the history records ``codebook_perplexity`` (``exp`` of
the entropy of the EMA code frequencies) and ``codebook_usage`` (the fraction of codes
whose EMA frequency is at least ``1 / (10 K)``).

Sampling: the paper fits an autoregressive PixelCNN prior over the codes; vaekit fits the
simplest prior, **a categorical distribution per position, independent across
positions** (:func:`fit_code_prior`, the code frequencies in the training data).
``vk.sample`` then draws codes from it and decodes them. Until it is fitted the prior is
uniform (the paper's training-time prior). Samples from the independent prior are
blurrier than the paper's; reconstructions are unaffected.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as nd
from jax.typing import ArrayLike
from jaxtyping import Array, PRNGKeyArray

from .._validate import positive_int
from ..core import AbstractVAE, Conditional, Fixed, Prior, resolve
from ..nets import stateful


class Codebook(eqx.Module):
    """``K`` code vectors of size ``D`` with their EMA statistics (a stateful module).

    ``state`` holds ``(codebook [K, D], counts [K], sums [K, D])``, all float32, not trained.
    """

    state: Fixed
    decay: float = eqx.field(static=True)
    eps: float = eqx.field(static=True)
    uid: str = eqx.field(static=True)
    stateful: ClassVar[bool] = True

    def __init__(self, num_codes: int, code_dim: int, *, key: PRNGKeyArray, decay: float = 0.99, eps: float = 1e-5):
        k, d = positive_int(num_codes, "num_codes"), positive_int(code_dim, "code_dim")
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be in (0, 1), got {decay!r}.")
        book = jax.random.normal(key, (k, d), jnp.float32)
        self.state = Fixed((book, jnp.ones(k, jnp.float32), book))
        self.decay, self.eps, self.uid = float(decay), float(eps), stateful.new_uid()

    @property
    def vectors(self) -> Array:
        """The codebook ``[K, D]``."""
        return resolve(self.state)[0]

    def nearest(self, z: Array) -> Array:
        """Index of the nearest code of each vector ``z [..., D]``: ``[...]``."""
        book = self.vectors
        d2 = jnp.sum(z**2, -1, keepdims=True) - 2 * z @ book.T + jnp.sum(book**2, -1)
        return jnp.argmin(d2, -1)

    def quantize(self, z: Array) -> tuple[Array, Array]:
        """``(z_q, indices)`` for ``z_e [..., D]``; inside a training step the EMA update of
        the codebook with this batch is handed to ``vk.fit``."""
        idx = self.nearest(jax.lax.stop_gradient(z))
        book = self.vectors
        if stateful.is_training():
            stateful.record(self.uid, self.ema_update(jax.lax.stop_gradient(z), idx))
        return book[idx], idx

    def ema_update(self, z: Array, idx: Array) -> tuple[Array, Array, Array]:
        """The state after one EMA step with vectors ``z [..., D]`` assigned to ``idx [...]``."""
        book, counts, sums = resolve(self.state)
        k = book.shape[0]
        onehot = jax.nn.one_hot(idx.reshape(-1), k, dtype=jnp.float32)  # [N, K]
        n = jnp.sum(onehot, 0)
        s = onehot.T @ z.reshape(-1, z.shape[-1]).astype(jnp.float32)
        g = self.decay
        counts = g * counts + (1 - g) * n
        sums = g * sums + (1 - g) * s
        total = jnp.sum(counts)
        smoothed = (counts + self.eps) / (total + k * self.eps) * total  # Laplace smoothing
        return sums / smoothed[:, None], counts, sums

    def frequencies(self) -> Array:
        """EMA frequencies of the codes ``[K]`` (summing to 1)."""
        counts = resolve(self.state)[1]
        return counts / jnp.sum(counts)


class PointEncoder(Conditional):
    """A deterministic encoder: ``net(x)`` reshaped to ``z_e [P, D]``; its "posterior" is a
    point mass at the quantized codes ``z_q`` (set by :class:`VQVAE`)."""

    net: Callable[[Array], Array]
    positions: int = eqx.field(static=True)
    code_dim: int = eqx.field(static=True)

    def raw(self, x: ArrayLike) -> Array:
        """``z_e [batch, P, D]`` for ``x [batch, *data]``."""
        out = jax.vmap(resolve(self.net))(jnp.asarray(x))
        return out.reshape(out.shape[0], self.positions, self.code_dim)

    def dist(self, x: ArrayLike, batch_ndim: int = 1) -> nd.Distribution:
        return nd.Delta(self.raw(x), event_dim=2)

    def mean(self, x: ArrayLike, batch_ndim: int = 1) -> Array:
        return self.raw(x)

    def parameters(self, x: ArrayLike, batch_ndim: int = 1) -> dict[str, Array]:
        return {"z_e": self.raw(x)}

    def support_check(self, y: Any) -> Any:
        return jnp.isfinite(jnp.asarray(y))


class Flatten(eqx.Module):
    """``net(z.reshape(-1))``: a decoder network for ``[P, D]`` codes taking a vector."""

    net: Callable[[Array], Array]
    in_size: int = eqx.field(static=True)

    def __call__(self, z: Array) -> Array:
        return self.net(jnp.reshape(z, (-1,)))


class CodePrior(Prior):
    """A categorical distribution over the ``K`` codes at each of ``P`` positions,
    independent across positions: ``logits [P, K]`` (not trained by ``vk.fit``)."""

    logits: Fixed

    def __init__(self, logits: ArrayLike):
        self.logits = Fixed(jax.nn.log_softmax(jnp.asarray(logits, jnp.float32), -1))

    def dist(self) -> nd.Distribution:
        return nd.CategoricalLogits(resolve(self.logits)).to_event(1)


class CodeVectors(nd.Distribution):
    """Codes drawn from a :class:`CodePrior`, returned as their codebook vectors ``[P, D]``."""

    def __init__(self, logits: Array, book: Array):
        self.logits, self.book = logits, book
        super().__init__(batch_shape=(), event_shape=(logits.shape[0], book.shape[1]))

    def sample(self, key, sample_shape=()):
        idx = nd.CategoricalLogits(self.logits).sample(key, sample_shape)  # [*, P]
        return self.book[idx]

    def log_prob(self, value):
        raise NotImplementedError(
            "a VQ-VAE's prior is over discrete codes: use model.prior.log_prob(indices) with "
            "indices from vk.zoo.vq.codes(model, x)."
        )


class VQVAE(AbstractVAE):
    """A VQ-VAE: :class:`PointEncoder`, :class:`Codebook`, a decoder family over data
    given ``z_q [P, D]``, and a :class:`CodePrior` for sampling.

    :ivar beta: weight of the commitment loss (the paper's 0.25).
    """

    codebook: Codebook
    beta: float = eqx.field(static=True, default=0.25)

    def prior_dist(self) -> nd.Distribution:
        return CodeVectors(resolve(self.prior.logits), self.codebook.vectors)  # type: ignore[attr-defined]

    def posterior(self, x: ArrayLike) -> nd.Distribution:
        z_q, _ = self.codebook.quantize(self.encoder.raw(x))  # type: ignore[attr-defined]
        return nd.Delta(z_q, event_dim=2)

    def epoch_metrics(self, val: Any = None) -> dict[str, float]:
        """Added to ``vk.fit``'s history after every epoch: ``codebook_perplexity`` (``exp``
        of the entropy of the EMA code frequencies, at most ``K``) and ``codebook_usage``
        (the fraction of codes whose EMA frequency is at least ``1 / (10 K)``)."""
        p = np.asarray(self.codebook.frequencies(), np.float64)
        k = p.shape[0]
        nz = p[p > 0]
        return {
            "codebook_perplexity": float(np.exp(-np.sum(nz * np.log(nz)))),
            "codebook_usage": float(np.mean(p >= 1.0 / (10 * k))),
        }


def codes(model: VQVAE, x: ArrayLike, batch_size: int = 1000) -> Array:
    """The code index of every position: ``[n, P]`` ints."""
    x = jnp.asarray(x)
    f = eqx.filter_jit(lambda m, xb: m.codebook.nearest(m.encoder.raw(xb)))
    return jnp.concatenate([f(model, x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)])


def fit_code_prior(model: VQVAE, x: ArrayLike, *, smoothing: float = 1.0) -> VQVAE:
    """``model`` with its prior set to the code frequencies of ``x`` per position
    (``(count + smoothing) / (n + K smoothing)``): a categorical per position, positions
    independent. ``vk.sample(model, ...)`` then samples codes from it and decodes them."""
    idx = np.asarray(codes(model, x))
    k = model.codebook.vectors.shape[0]
    counts = np.stack([np.bincount(idx[:, p], minlength=k) for p in range(idx.shape[1])]).astype(np.float64)
    probs = (counts + smoothing) / (counts.sum(1, keepdims=True) + k * smoothing)
    return eqx.tree_at(lambda m: m.prior, model, CodePrior(np.log(probs)))


def vq_objective(model: VQVAE, x: Array, key: PRNGKeyArray, step: Array) -> Array:
    """Per-example VQ-VAE loss (reconstruction NLL + ``beta`` * commitment), ``[batch]``."""
    z_e = model.encoder.raw(x)  # type: ignore[attr-defined]
    z_q, _ = model.codebook.quantize(z_e)
    z_st = z_e + jax.lax.stop_gradient(z_q - z_e)  # straight-through
    rec = -model.decoder.dist(z_st).log_prob(x)
    commit = jnp.sum((z_e - jax.lax.stop_gradient(z_q)) ** 2, (-2, -1))
    return rec + model.beta * commit


def vq_vae(
    n_features: int | Sequence[int],
    *,
    key: PRNGKeyArray,
    num_codes: int = 32,
    code_dim: int = 8,
    positions: int = 4,
    hidden: int | Sequence[int] = (32, 64),
    likelihood: str = "bernoulli",
    beta: float = 0.25,
    decay: float = 0.99,
) -> VQVAE:
    """A convolutional VQ-VAE for images ``(H, W[, C])`` (or an MLP one for flat data):
    ``positions`` codes of size ``code_dim`` from a codebook of ``num_codes``; ``hidden``
    are the conv stage widths (MLP widths for flat data)."""
    from ..core import Bernoulli, Gaussian
    from ..nets import MLP, ConvDecoder, ConvEncoder, Unflatten
    from ..nets.mlp import widths

    if likelihood not in ("bernoulli", "gaussian"):
        raise ValueError(f"vq_vae likelihood must be 'bernoulli' or 'gaussian', got {likelihood!r}.")
    m = 1 if likelihood == "bernoulli" else 2

    shape = (n_features,) if isinstance(n_features, int) else tuple(n_features)
    positive_int(positions, "positions")
    out = positions * positive_int(code_dim, "code_dim")
    k1, k2, k3 = jax.random.split(key, 3)
    chans = widths(hidden)
    if len(shape) in (2, 3):
        enc_net = ConvEncoder(shape, out, chans, key=k1)
        dec_net = ConvDecoder(out, shape, chans[::-1], params_per_value=m, key=k2)
    else:
        enc_net = MLP(math.prod(shape), out, chans, jax.nn.relu, key=k1)
        dec_net = Unflatten(MLP(out, m * math.prod(shape), chans[::-1], jax.nn.relu, key=k2), shape, m)
    dec = (Bernoulli if m == 1 else Gaussian)(Flatten(dec_net, out))
    enc = PointEncoder(enc_net, positions, code_dim)
    book = Codebook(num_codes, code_dim, key=k3, decay=decay)
    prior = CodePrior(jnp.zeros((positions, num_codes)))
    return VQVAE(prior, enc, dec, book, beta=float(beta))
