"""Ready-made models. ``build(name, n_features, key=...)`` picks one by name.

* ``vae``: Kingma & Welling 2014 (Auto-Encoding Variational Bayes), MLP encoder with a
  diagonal Gaussian posterior, standard normal prior, decoder chosen by ``likelihood``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
from jaxtyping import Array, PRNGKeyArray

from .distributions import Bernoulli, Beta, Conditional, Gaussian, Laplace, StudentT
from .model import VAE
from .nets import MLP
from .priors import StandardNormal

LIKELIHOODS = ("bernoulli", "gaussian", "laplace", "studentt", "beta")


def decoder_for(
    likelihood: str, latent_dim: int, n_features: int, hidden: Sequence[int], activation, key, *, variance: str = "diag"
) -> Conditional:
    """An MLP decoder ``latent_dim -> n_features`` with the named likelihood."""
    if likelihood == "bernoulli":
        return Bernoulli(MLP(latent_dim, n_features, hidden, activation, key=key))
    if likelihood == "beta":
        return Beta(MLP(latent_dim, 2 * n_features, hidden, activation, key=key))
    fam = {"gaussian": Gaussian, "laplace": Laplace, "studentt": StudentT}.get(likelihood)
    if fam is None:
        raise ValueError(
            f"Unknown likelihood={likelihood!r}. Valid values: {', '.join(map(repr, LIKELIHOODS))}."
        )
    out = {"diag": 2 * n_features, "scalar": n_features + 1}.get(variance, n_features)
    kw = {"scale": 1.0} if variance == "fixed" else {}
    return fam(MLP(latent_dim, out, hidden, activation, key=key), variance, **kw)


def vae(
    n_features: int,
    *,
    key: PRNGKeyArray,
    latent_dim: int = 2,
    hidden: Sequence[int] = (500,),
    likelihood: str = "bernoulli",
    activation: Callable[[Array], Array] = jax.nn.tanh,
    variance: str = "diag",
) -> VAE:
    """The VAE of Kingma & Welling (2014): ``n_features -> hidden -> 2*latent_dim`` encoder
    (diagonal Gaussian), ``N(0, I)`` prior, ``latent_dim -> hidden -> n_features`` decoder."""
    k1, k2 = jax.random.split(key)
    return VAE(
        prior=StandardNormal(latent_dim),
        encoder=Gaussian(MLP(n_features, 2 * latent_dim, hidden, activation, key=k1), "diag"),
        decoder=decoder_for(likelihood, latent_dim, n_features, hidden, activation, k2, variance=variance),
    )


PRESETS: dict[str, Callable[..., VAE]] = {"vae": vae}


def build(name: str, n_features: int, *, key: PRNGKeyArray, **options) -> VAE:
    """Build the preset ``name`` for data with ``n_features`` features."""
    if name not in PRESETS:
        raise ValueError(f"Unknown model={name!r}. Valid values: {', '.join(map(repr, PRESETS))}.")
    return PRESETS[name](n_features, key=key, **options)
