"""Hierarchical VAEs: ``L`` stochastic layers (Burda et al. 2016, arXiv 1509.00519, the
784-100-50 two-layer model; the ladder/top-down inference of Sonderby et al. 2016, arXiv
1602.02282).

The latent ``z`` of the model is the concatenation ``[z_1, ..., z_L]`` (bottom layer
first), so ``vk.elbo``, ``vk.iwae_bound`` and ``vk.log_likelihood`` work unchanged: the
prior is the joint ``p(z) = p(z_L) prod_l p(z_l | z_{l+1})`` with ``p(z_L) = N(0, I)`` and
Gaussian conditionals, the posterior the joint ``q(z | x)``, and the decoder reads ``z_1``.
The KL term has no closed form; it is estimated from the same samples (Monte Carlo).

Inference (``ladder=False``, bottom-up as in Burda et al.): ``q(z_1 | x) prod_l q(z_{l+1} |
z_l)``. With ``ladder=True`` (Sonderby et al.): a deterministic bottom-up pass gives
``(mu_l, sigma_l)`` for every layer; the top is ``q(z_L | x) = N(mu_L, sigma_L)`` and each
lower layer combines its bottom-up estimate with the generative top-down ``p(z_l |
z_{l+1})`` by precision weighting, sharing the generative networks.
"""

# no ``from __future__ import annotations``: equinox reads class annotations at creation.
from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as nd
from jax.typing import ArrayLike
from jaxtyping import Array, PRNGKeyArray

from .._validate import positive_int
from ..core import AbstractVAE, Conditional, Gaussian, Prior, resolve
from ..nets import MLP


class LatentChain(nd.Distribution):
    """A joint distribution over concatenated layers, given by an ancestral sampler
    ``draw(key, sample_shape) -> z [*sample, *batch, D]`` (reparameterized) and
    ``log_density(z) -> [*sample, *batch]``."""

    arg_constraints = {}  # noqa: RUF012
    pytree_aux_fields = ("draw", "log_density")

    def __init__(
        self,
        draw: Callable,
        log_density: Callable,
        batch_shape: tuple[int, ...],
        size: int,
    ):
        self.draw, self.log_density = draw, log_density
        super().__init__(batch_shape=tuple(batch_shape), event_shape=(int(size),))

    @property
    def has_rsample(self) -> bool:
        return True

    def rsample(self, key, sample_shape=()):
        return self.draw(key, tuple(sample_shape))

    def sample(self, key, sample_shape=()):
        return jax.lax.stop_gradient(self.draw(key, tuple(sample_shape)))

    def log_prob(self, value):
        return self.log_density(jnp.asarray(value))


def _split(z: Array, dims: tuple[int, ...]) -> list[Array]:
    cuts = [sum(dims[: i + 1]) for i in range(len(dims) - 1)]
    return jnp.split(z, cuts, axis=-1)


def _normal(loc: Array, scale: Array) -> nd.Distribution:
    return nd.Normal(loc, scale).to_event(1)


class HierarchicalPrior(Prior):
    """``p(z_L) prod_l p(z_l | z_{l+1})``: ``N(0, I)`` on the top layer and Gaussian
    conditionals ``top_down[l] = p(z_{l+1} | z_{l+2})`` (bottom first) below it."""

    dims: tuple[int, ...] = eqx.field(static=True)
    top_down: tuple[Conditional, ...]

    def __init__(self, dims: Sequence[int], top_down: Sequence[Conditional]):
        self.dims = tuple(positive_int(d, "latent layer size") for d in dims)
        self.top_down = tuple(top_down)
        if len(self.top_down) != len(self.dims) - 1:
            raise ValueError(
                f"HierarchicalPrior needs {len(self.dims) - 1} top-down conditionals for {len(self.dims)} layers."
            )

    def conditional(self, l: int, upper: Array) -> nd.Distribution:
        """``p(z_l | z_{l+1} = upper)`` for ``upper [*batch, d_{l+1}]``."""
        return self.top_down[l].dist(upper, upper.ndim - 1)

    def dist(self) -> nd.Distribution:
        p = resolve(self)
        dims = p.dims

        def draw(key, shape):
            keys = jax.random.split(key, len(dims))
            z = jax.random.normal(keys[-1], (*shape, dims[-1]))
            layers = [z]
            for l in range(len(dims) - 2, -1, -1):
                z = p.conditional(l, z).rsample(keys[l])
                layers.insert(0, z)
            return jnp.concatenate(layers, -1)

        def log_density(z):
            zs = _split(z, dims)
            lp = _normal(jnp.zeros(dims[-1]), jnp.ones(dims[-1])).log_prob(zs[-1])
            for l in range(len(dims) - 1):
                lp = lp + p.conditional(l, zs[l + 1]).log_prob(zs[l])
            return lp

        return LatentChain(draw, log_density, (), sum(dims))


class HierarchicalEncoder(Conditional):
    """``q(z | x)`` over the concatenated layers.

    Bottom-up (``ladder=False``): ``nets[0]`` gives ``q(z_1 | x)``, ``nets[l]`` ``q(z_{l+1} |
    z_l)``, each a :class:`vaekit.Gaussian`. Ladder (``ladder=True``): ``nets[l]`` is the
    deterministic bottom-up block into layer ``l`` and ``heads[l]`` its ``(mu, sigma)``
    head; the posterior then needs the prior's top-down networks, so build it through
    :meth:`HierarchicalVAE.posterior`.
    """

    dims: tuple[int, ...] = eqx.field(static=True)
    ladder: bool = eqx.field(static=True)
    nets: tuple
    heads: tuple

    def __init__(
        self,
        dims: Sequence[int],
        nets: Sequence,
        heads: Sequence = (),
        *,
        ladder: bool = False,
    ):
        self.dims, self.ladder = tuple(dims), bool(ladder)
        self.nets, self.heads = tuple(nets), tuple(heads)

    def joint(self, x: ArrayLike, prior: HierarchicalPrior | None = None) -> nd.Distribution:
        """``q(z | x)`` for ``x [batch, *data]``: batch ``[batch]``, event ``[sum(dims)]``."""
        enc = resolve(self)
        x = jnp.asarray(x)
        dims = enc.dims
        if not enc.ladder:
            first = enc.nets[0].dist(x)

            def draw(key, shape):
                keys = jax.random.split(key, len(dims))
                z = first.rsample(keys[0], shape)
                layers = [z]
                for l in range(1, len(dims)):
                    z = enc.nets[l].dist(z, z.ndim - 1).rsample(keys[l])
                    layers.append(z)
                return jnp.concatenate(layers, -1)

            def log_density(z):  # pyright: ignore[reportRedeclaration]
                zs = _split(z, dims)
                lp = first.log_prob(zs[0])
                for l in range(1, len(dims)):
                    lp = lp + enc.nets[l].dist(zs[l - 1], zs[l - 1].ndim - 1).log_prob(zs[l])
                return lp

            return LatentChain(draw, log_density, first.batch_shape, sum(dims))
        if prior is None:
            raise ValueError("A ladder encoder needs the prior's top-down networks: use model.posterior(x).")
        stats = []  # bottom-up (mu, sigma) per layer, [batch, d_l]
        h = x
        for l in range(len(dims)):
            h = jax.vmap(enc.nets[l])(jnp.reshape(h, (h.shape[0], -1)))
            mu, raw = jnp.split(jax.vmap(enc.heads[l])(h), 2, -1)
            stats.append((mu, jax.nn.softplus(raw) + 1e-4))

        def layer(l, upper):
            mu, sigma = stats[l]
            if upper is None:
                return _normal(mu, sigma)
            p = prior.conditional(l, upper)
            base = p.base_dist if isinstance(p, nd.Independent) else p
            prec_q, prec_p = sigma**-2, base.scale**-2
            var = 1.0 / (prec_q + prec_p)
            return _normal((mu * prec_q + base.loc * prec_p) * var, jnp.sqrt(var))

        def draw(key, shape):
            keys = jax.random.split(key, len(dims))
            z = layer(len(dims) - 1, None).rsample(keys[-1], shape)
            layers = [z]
            for l in range(len(dims) - 2, -1, -1):
                z = layer(l, z).rsample(keys[l])
                layers.insert(0, z)
            return jnp.concatenate(layers, -1)

        def log_density(z):
            zs = _split(z, dims)
            lp = layer(len(dims) - 1, None).log_prob(zs[-1])
            for l in range(len(dims) - 1):
                lp = lp + layer(l, zs[l + 1]).log_prob(zs[l])
            return lp

        return LatentChain(draw, log_density, (x.shape[0],), sum(dims))

    def dist(self, x: ArrayLike, batch_ndim: int = 1) -> nd.Distribution:
        if batch_ndim != 1:
            raise ValueError("HierarchicalEncoder takes a batch x [batch, *data] (batch_ndim=1).")
        return self.joint(x)

    def mean(self, x: ArrayLike, batch_ndim: int = 1) -> Array:
        """The layer means along the mean path (``z_{l+1}`` from the mean of ``z_l``)."""
        enc = resolve(self)
        if enc.ladder:
            raise ValueError(
                "A ladder encoder needs the prior's top-down networks: use HierarchicalVAE.posterior_mean(x)."
            )
        z = enc.nets[0].mean(x)
        layers = [z]
        for l in range(1, len(enc.dims)):
            z = enc.nets[l].mean(z)
            layers.append(z)
        return jnp.concatenate(layers, -1)

    def parameters(self, x: ArrayLike, batch_ndim: int = 1) -> dict[str, Array]:
        return {"mean": self.mean(x, batch_ndim)}

    def support_check(self, y):
        return jnp.isfinite(jnp.asarray(y))


class FirstLayer(eqx.Module):
    """``net(z[:size])``: the decoder reads the bottom layer of the concatenated latent."""

    net: Callable[[Array], Array]
    size: int = eqx.field(static=True)
    total: int = eqx.field(static=True)

    @property
    def in_size(self) -> int:
        return self.total

    @property
    def out_size(self):
        return getattr(self.net, "out_size", None)

    def __call__(self, z: Array) -> Array:
        return self.net(z[..., : self.size])


class HierarchicalVAE(AbstractVAE):
    """A VAE with :class:`HierarchicalPrior` and :class:`HierarchicalEncoder` (whose ladder
    form shares the prior's top-down networks); the decoder reads ``z_1``."""

    def __check_init__(self):
        if not isinstance(self.prior, HierarchicalPrior) or not isinstance(self.encoder, HierarchicalEncoder):
            raise TypeError("HierarchicalVAE needs a HierarchicalPrior and a HierarchicalEncoder.")

    def prior_dist(self) -> nd.Distribution:
        return resolve(self.prior).dist()

    def posterior(self, x: ArrayLike) -> nd.Distribution:
        m = resolve(self)
        return m.encoder.joint(x, m.prior if m.encoder.ladder else None)


def hierarchical_parts(
    n_in: int,
    dims: Sequence[int],
    hidden: Sequence[int],
    activation,
    *,
    ladder: bool,
    key: PRNGKeyArray,
) -> tuple[HierarchicalPrior, HierarchicalEncoder]:
    """Burda et al.'s networks: two hidden layers of width ``hidden[l]`` into and out of
    stochastic layer ``l`` (bottom first)."""
    dims, hidden = tuple(dims), tuple(hidden)
    keys = iter(jax.random.split(key, 4 * len(dims)))
    ins = (n_in, *dims[:-1])
    top_down = [
        Gaussian(
            MLP(
                dims[l + 1],
                2 * dims[l],
                (hidden[l + 1],) * 2,
                activation,
                key=next(keys),
            ),
            "diag",
        )
        for l in range(len(dims) - 1)
    ]
    if ladder:
        feats = (n_in, *hidden[:-1])
        nets = [
            MLP(
                feats[l],
                hidden[l],
                (hidden[l],),
                activation,
                activation,
                key=next(keys),
            )
            for l in range(len(dims))
        ]
        heads = [MLP(hidden[l], 2 * dims[l], (), key=next(keys)) for l in range(len(dims))]
        enc = HierarchicalEncoder(dims, nets, heads, ladder=True)
    else:
        nets = [
            Gaussian(
                MLP(ins[l], 2 * dims[l], (hidden[l],) * 2, activation, key=next(keys)),
                "diag",
            )
            for l in range(len(dims))
        ]
        enc = HierarchicalEncoder(dims, nets)
    return HierarchicalPrior(dims, top_down), enc
