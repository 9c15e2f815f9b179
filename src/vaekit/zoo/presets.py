"""Ready-made models. ``build(name, n_features, key=...)`` picks one by name.

``n_features`` is the number of features (flat data) or the shape of one example
(``(H, W)`` / ``(H, W, C)`` images, ``(T,)`` audio frames). Every preset takes
``latent_dim``, ``hidden`` (an int or a sequence; each preset's own width, see
:func:`default_hidden`), ``likelihood`` and ``variance`` (the decoder's, for
Gaussian-type likelihoods); :func:`fit_options` gives the extra
``vk.fit`` arguments a preset needs (e.g. the IWAE objective).

=================  ==================================================================
preset             paper
=================  ==================================================================
``vae``            Kingma & Welling 2014, Auto-Encoding Variational Bayes (1312.6114)
``beta_vae``       Higgins et al. 2017, beta-VAE (ICLR 2017)
``iwae``           Burda, Grosse & Salakhutdinov 2016, Importance Weighted AEs (1509.00519)
``dirichlet_vae``  Joo, Lee, Park & Moon 2019, Dirichlet VAE (1901.02739)
``vamp_vae``       Tomczak & Welling 2018, VAE with a VampPrior (1705.07120)
``conv_vae``       convolutional VAE; ResNet blocks as in He et al. 2016 (1512.03385)
``discrete_vae``   REINFORCE/NVIL (Mnih & Gregor 2014, 1402.0030) or Concrete
                   (Maddison et al. 2017, 1611.00712; Jang et al. 2017, 1611.01144)
``flow_vae``       Rezende & Mohamed 2015, planar flows (1505.05770); Kingma et al.
                   2016, IAF (1606.04934)
``cvae``           Sohn, Lee & Yan 2015, conditional VAE (NeurIPS 2015); train with ``y=``
``m2``             Kingma, Rezende, Mohamed & Welling 2014, semi-supervised M2 (1406.5298)
``vq_vae``         van den Oord, Vinyals & Kavukcuoglu 2017, VQ-VAE (1711.00937)
``hierarchical_vae`` Burda et al. 2016 two stochastic layers (1509.00519); ladder
                   inference: Sonderby et al. 2016 (1602.02282)
``svae``           Davidson et al. 2018, Hyperspherical VAE (1804.00891); power
                   spherical: De Cao & Aziz 2020 (2006.04437)
=================  ==================================================================
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as nd
from jaxtyping import Array, PRNGKeyArray

from .._validate import int_at_least, one_of, positive_int
from ..core import (
    VAE,
    AbstractVAE,
    Bernoulli,
    BernoulliPrior,
    Beta,
    Categorical,
    CategoricalPrior,
    Conditional,
    ContinuousBernoulli,
    FamilyPrior,
    Gaussian,
    Laplace,
    MixtureOfGaussians,
    Normal,
    StandardNormal,
    StudentT,
    fixed,
)
from ..nets import MLP, Conv1dDecoder, Conv1dEncoder, ConvDecoder, ConvEncoder, Unflatten
from ..nets.mlp import ACTIVATIONS as ACTIVATIONS
from ..nets.mlp import activation_fn, widths
from . import conditional, families, flows, vq
from .dirichlet import DirichletLatent, DirichletPrior
from .discrete import BASELINES, BaselineVAE, ConcretePrior, GumbelSoftmax, reinforce_objective
from .vamp import VampPrior, VampVAE

LIKELIHOODS = ("bernoulli", "gaussian", "laplace", "studentt", "beta", "continuous-bernoulli")
#: latent families accepted by ``latent=``
LATENTS = (
    "gaussian",
    "laplace",
    "logistic",
    "cauchy",
    "gumbel",
    "exponential",
    "weibull",
    "kumaraswamy",
    "dirichlet",
    "bernoulli",
    "categorical",
    "concrete",
    "planar",
    "iaf",
)
#: priors accepted by ``prior=`` (for real-valued latents)
PRIORS = ("standard", "trainable", "mog", "vamp")
_REAL = ("gaussian", "laplace", "logistic", "cauchy", "gumbel", "planar", "iaf")


def _choice(name: str, got: Any, valid: Sequence[str]) -> None:
    one_of(got, valid, name)


def _params_per_value(likelihood: str, variance: str) -> int:
    if likelihood in ("bernoulli", "continuous-bernoulli"):
        return 1
    if likelihood == "beta":
        return 2
    return {"diag": 2, "scalar": 1}.get(variance, 1)


def _wrap_decoder(likelihood: str, net, variance: str) -> Conditional:
    if likelihood == "bernoulli":
        return Bernoulli(net)
    if likelihood == "continuous-bernoulli":
        return ContinuousBernoulli(net)
    if likelihood == "beta":
        return Beta(net)
    fam = {"gaussian": Gaussian, "laplace": Laplace, "studentt": StudentT}[likelihood]
    kw = {"scale": 1.0} if variance == "fixed" else {}
    if variance == "shared":
        kw = {"size": getattr(net, "out_size", None) or 1}
    return fam(net, variance, **kw)


def decoder_for(
    likelihood: str,
    latent_dim: int,
    n_features: int | Sequence[int],
    hidden: Sequence[int],
    activation,
    key,
    *,
    variance: str = "diag",
) -> Conditional:
    """An MLP decoder ``latent_dim -> n_features`` with the named likelihood.

    ``n_features`` may be a data shape; the output is then reshaped to it.
    """
    _choice("likelihood", likelihood, LIKELIHOODS)
    hidden, activation = widths(hidden), activation_fn(activation)
    if isinstance(n_features, int):
        if likelihood in ("bernoulli", "continuous-bernoulli"):
            return _wrap_decoder(likelihood, MLP(latent_dim, n_features, hidden, activation, key=key), variance)
        if likelihood == "beta":
            return Beta(MLP(latent_dim, 2 * n_features, hidden, activation, key=key))
        out = {"diag": 2 * n_features, "scalar": n_features + 1}.get(variance, n_features)
        return _wrap_decoder(likelihood, MLP(latent_dim, out, hidden, activation, key=key), variance)
    shape = tuple(n_features)
    if variance in ("scalar", "shared"):
        raise ValueError(f"variance={variance!r} needs flat data; for shaped data use 'diag' or 'fixed'.")
    m = _params_per_value(likelihood, variance)
    net = Unflatten(MLP(latent_dim, m * math.prod(shape), hidden, activation, key=key), shape, m)
    return _wrap_decoder(likelihood, net, variance)


def _shape(n_features) -> tuple[int, ...]:
    if isinstance(n_features, int) and not isinstance(n_features, bool):
        if n_features <= 0:
            raise ValueError(f"n_features must be positive, got {n_features}.")
        return (n_features,)
    try:
        shape = tuple(int(s) for s in n_features)  # pyright: ignore[reportGeneralTypeIssues]
    except TypeError:
        raise TypeError(f"n_features must be an int or a data shape tuple, got {n_features!r}.") from None
    if not shape or any(s <= 0 for s in shape):
        raise ValueError(f"n_features shape must be non-empty with positive sizes, got {shape}.")
    return shape


def _features_arg(shape: tuple[int, ...]) -> int | tuple[int, ...]:
    return shape[0] if len(shape) == 1 else shape


def _encoder(
    latent: str,
    net_factory: Callable[[int], Any],
    latent_dim: int,
    *,
    num_classes: int,
    temperature: float,
    key,
    sampler="implicit",
    kl="dirichlet",
    newton_steps=0,
    n_flows=2,
):
    d = latent_dim
    if latent in ("gaussian", "laplace"):
        return (Gaussian if latent == "gaussian" else Laplace)(net_factory(2 * d), "diag")
    if latent in ("logistic", "cauchy", "gumbel", "kumaraswamy", "weibull"):
        return families.CONDITIONALS[latent](net_factory(2 * d))
    if latent == "exponential":
        return families.ExponentialConditional(net_factory(d))
    if latent == "dirichlet":
        return DirichletLatent(net_factory(d), sampler=sampler, kl=kl, newton_steps=newton_steps)
    if latent == "bernoulli":
        return Bernoulli(net_factory(d))
    if latent == "categorical":
        return Categorical(net_factory(d * num_classes), num_classes, one_hot=True)
    if latent == "concrete":
        return GumbelSoftmax(net_factory(d * num_classes), num_classes, temperature=temperature)
    keys = jax.random.split(key, n_flows)
    layer = (lambda k: flows.Planar(d, key=k)) if latent == "planar" else (lambda k: flows.IAF(d, key=k))
    return flows.FlowPosterior(Gaussian(net_factory(2 * d), "diag"), [layer(k) for k in keys])


def _prior(
    latent: str,
    prior: str | None,
    d: int,
    *,
    num_classes: int,
    temperature: float,
    n_components: int,
    prior_alpha: float,
    key,
):
    implied = {
        "exponential": "exponential(1)",
        "weibull": "exponential(1)",
        "kumaraswamy": "uniform (beta(1, 1))",
        "dirichlet": "dirichlet",
        "bernoulli": "bernoulli(1/2)",
        "categorical": "uniform categorical",
        "concrete": "uniform concrete",
    }
    if latent not in _REAL:
        if prior is not None:
            raise ValueError(
                f"prior={prior!r} is not available for latent={latent!r} (its prior is "
                f"{implied[latent]}). prior= works with latents {', '.join(map(repr, _REAL))}."
            )
        if latent in ("exponential", "weibull"):
            return FamilyPrior(nd.Exponential, d, 1.0)
        if latent == "kumaraswamy":
            return FamilyPrior(nd.Beta, d, 1.0, 1.0)
        if latent == "dirichlet":
            return DirichletPrior(d, prior_alpha)
        if latent == "bernoulli":
            return BernoulliPrior(d)
        if latent == "categorical":
            return CategoricalPrior(d, num_classes)
        return ConcretePrior(d, num_classes, temperature=temperature)
    prior = prior or "standard"
    _choice("prior", prior, PRIORS)
    if latent in ("cauchy", "logistic", "gumbel") and prior == "standard":
        return FamilyPrior(
            {"cauchy": families.Cauchy, "logistic": families.Logistic, "gumbel": families.Gumbel}[latent], d, 0.0, 1.0
        )
    if prior == "standard":
        return StandardNormal(d)
    if prior == "trainable":  # trainable variance, fixed zero mean
        return Normal(fixed(jnp.zeros(d)), jnp.ones(d))
    if prior == "mog":
        return MixtureOfGaussians(n_components, d, key=key)
    return None  # vamp: built by the caller


def _mlp_factory(shape, hidden, activation, key):
    n_in = math.prod(shape)
    hidden, activation = widths(hidden), activation_fn(activation)
    return lambda out: MLP(n_in, out, hidden, activation, key=key)


def _latent_size(latent: str, d: int, num_classes: int) -> int:
    return d * num_classes if latent in ("categorical", "concrete") else d


def vae(
    n_features: int | Sequence[int],
    *,
    key: PRNGKeyArray,
    latent_dim: int = 2,
    hidden: int | Sequence[int] = (500,),
    likelihood: str = "bernoulli",
    activation: str | Callable[[Array], Array] = jax.nn.tanh,
    variance: str = "diag",
    latent: str = "gaussian",
    prior: str | None = None,
    num_classes: int = 10,
    temperature: float = 2.0 / 3.0,
    n_components: int = 10,
    n_pseudo: int = 50,
    pseudo_inputs: Array | None = None,
    n_flows: int = 2,
) -> AbstractVAE:
    """The VAE of Kingma & Welling (2014, arXiv 1312.6114): MLP encoder and decoder.

    ``n_features -> hidden -> latent parameters`` encoder, ``latent_dim -> hidden ->
    data`` decoder with the named ``likelihood``. By default a diagonal Gaussian
    posterior with an ``N(0, I)`` prior; ``latent=`` picks another latent family
    (see ``LATENTS``) and ``prior=`` another prior for real-valued latents
    (``"standard"``, ``"trainable"`` variance with fixed zero mean, ``"mog"`` with
    ``n_components``, ``"vamp"`` with ``n_pseudo`` pseudo-inputs).
    """
    shape = _shape(n_features)
    _choice("likelihood", likelihood, LIKELIHOODS)
    _choice("latent", latent, LATENTS)
    if latent in ("categorical", "concrete"):
        int_at_least(num_classes, 2, "num_classes")
    positive_int(latent_dim, "latent_dim")
    if latent == "dirichlet" and latent_dim < 2:
        raise ValueError("latent='dirichlet' needs latent_dim >= 2 (a simplex of dimension latent_dim).")
    k1, k2, k3, k4 = jax.random.split(key, 4)
    enc = _encoder(
        latent,
        _mlp_factory(shape, hidden, activation, k1),
        latent_dim,
        num_classes=num_classes,
        temperature=temperature,
        key=k3,
        n_flows=n_flows,
    )
    p = _prior(
        latent,
        prior,
        latent_dim,
        num_classes=num_classes,
        temperature=temperature,
        n_components=n_components,
        prior_alpha=0.98,
        key=k4,
    )
    dec = decoder_for(
        likelihood,
        _latent_size(latent, latent_dim, num_classes),
        _features_arg(shape),
        hidden,
        activation,
        k2,
        variance=variance,
    )
    if p is None:
        return _vamp(enc, dec, shape, n_pseudo, pseudo_inputs, k4)
    return VAE(prior=p, encoder=enc, decoder=dec)


def _vamp(enc, dec, shape, n_pseudo, pseudo_inputs, key):
    if pseudo_inputs is None:
        positive_int(n_pseudo, "n_pseudo")
        u = 0.5 + 0.1 * jax.random.normal(key, (n_pseudo, *shape))
        vp = VampPrior(u)
    else:
        vp = VampPrior(pseudo_inputs)
        if tuple(vp.pseudo_inputs.shape[1:]) != shape:
            raise ValueError(
                f"pseudo_inputs must have shape [K, {', '.join(map(str, shape))}], got {tuple(vp.pseudo_inputs.shape)}."
            )
    return VampVAE(vp, enc, dec)


def beta_vae(n_features, *, key, beta: float = 4.0, **options) -> AbstractVAE:
    """beta-VAE (Higgins et al. 2017): the :func:`vae` model trained with ``beta * KL``.

    The model is :func:`vae`'s; ``beta`` reaches ``vk.fit`` through :func:`fit_options`.
    """
    if not beta >= 0:
        raise ValueError(f"beta must be non-negative, got {beta!r}.")
    return vae(n_features, key=key, **options)


def iwae(n_features, *, key, k: int = 5, **options) -> AbstractVAE:
    """IWAE (Burda et al. 2016, arXiv 1509.00519): the :func:`vae` model trained on the
    ``k``-sample importance-weighted bound (``fit_options``: ``objective="iwae"``)."""
    positive_int(k, "k")
    return vae(n_features, key=key, **options)


def dirichlet_vae(
    n_features,
    *,
    key: PRNGKeyArray,
    latent_dim: int = 10,
    hidden: int | Sequence[int] = (500,),
    likelihood: str = "bernoulli",
    activation: str | Callable[[Array], Array] = jax.nn.tanh,
    sampler: str = "knowles",
    kl: str = "multigamma",
    newton_steps: int = 0,
    prior_alpha: float = 0.98,
    latent: str | None = None,
    prior: str | None = None,
    variance: str = "diag",
) -> AbstractVAE:
    """Dirichlet VAE (Joo et al. 2019, arXiv 1901.02739): Dirichlet posterior over a
    ``latent_dim`` simplex, ``Dir(prior_alpha)`` prior (0.98 as in the paper), by default
    the paper's approximate inverse-Gamma-CDF sampler and multi-Gamma KL
    (``sampler="implicit"``, ``kl="dirichlet"`` for the exact alternatives). Update the
    prior by moments with ``callback=vk.moment_prior_update(x)``.
    """
    if latent not in (None, "dirichlet"):
        raise ValueError(
            f"dirichlet_vae has latent='dirichlet' only, got latent={latent!r}; use model 'vae' for others."
        )
    if prior not in (None, "dirichlet"):
        raise ValueError(f"dirichlet_vae has a Dirichlet prior only, got prior={prior!r}.")
    shape = _shape(n_features)
    _choice("likelihood", likelihood, LIKELIHOODS)
    latent_dim = int_at_least(latent_dim, 2, "dirichlet_vae latent_dim")
    k1, k2 = jax.random.split(key)
    enc = _encoder(
        "dirichlet",
        _mlp_factory(shape, hidden, activation, k1),
        latent_dim,
        num_classes=0,
        temperature=1.0,
        key=k1,
        sampler=sampler,
        kl=kl,
        newton_steps=newton_steps,
    )
    dec = decoder_for(likelihood, latent_dim, _features_arg(shape), hidden, activation, k2, variance=variance)
    return VAE(prior=DirichletPrior(latent_dim, prior_alpha), encoder=enc, decoder=dec)


def vamp_vae(n_features, *, key, n_pseudo: int = 50, pseudo_inputs: Array | None = None, **options) -> AbstractVAE:
    """VampPrior VAE (Tomczak & Welling 2018, arXiv 1705.07120): :func:`vae` with the
    prior ``1/K sum_k q(z|u_k)`` over ``n_pseudo`` learned pseudo-inputs (or the given
    ``pseudo_inputs``, e.g. ``vk.VampPrior.from_data(x, K, key=k).pseudo_inputs``)."""
    if options.get("prior") not in (None, "vamp"):
        raise ValueError(f"vamp_vae has prior='vamp' only, got prior={options['prior']!r}.")
    options["prior"] = "vamp"
    if options.get("latent", "gaussian") not in _REAL:
        raise ValueError(
            f"vamp_vae needs a real-valued latent ({', '.join(map(repr, _REAL))}), got {options['latent']!r}."
        )
    return vae(n_features, key=key, n_pseudo=n_pseudo, pseudo_inputs=pseudo_inputs, **options)


def conv_vae(
    n_features,
    *,
    key: PRNGKeyArray,
    latent_dim: int = 16,
    hidden: int | Sequence[int] = (32, 64),
    likelihood: str = "bernoulli",
    res_blocks: int = 0,
    variance: str = "diag",
    latent: str = "gaussian",
    prior: str | None = None,
) -> AbstractVAE:
    """Convolutional VAE for images ``(H, W[, C])`` of any size or audio frames ``(T,)``.

    ``hidden`` are the conv stage widths (stride 2 each); ``res_blocks`` residual blocks
    per stage give the ResNet VAE (He et al. 2016 blocks). Diagonal Gaussian posterior
    (or ``latent=``/``prior=`` as in :func:`vae` for real-valued latents).
    """
    shape = _shape(n_features)
    if len(shape) > 3:
        raise ValueError(f"conv_vae needs (T,), (H, W) or (H, W, C) data, got shape {shape}.")
    _choice("likelihood", likelihood, LIKELIHOODS)
    if latent not in ("gaussian", "laplace", "logistic", "cauchy", "gumbel"):
        raise ValueError(
            f"conv_vae latent must be one of 'gaussian', 'laplace', 'logistic', 'cauchy', 'gumbel'; got {latent!r}."
        )
    if variance not in ("diag", "fixed"):
        raise ValueError(f"conv_vae variance must be 'diag' or 'fixed', got {variance!r}.")
    if prior == "vamp":
        raise ValueError("conv_vae does not support prior='vamp'; valid priors: 'standard', 'trainable', 'mog'.")
    chans = widths(hidden, "hidden (conv channels)")
    Enc, Dec = (Conv1dEncoder, Conv1dDecoder) if len(shape) == 1 else (ConvEncoder, ConvDecoder)
    k1, k2, k3 = jax.random.split(key, 3)
    enc = _encoder(
        latent,
        lambda out: Enc(shape, out, chans, res_blocks=res_blocks, key=k1),
        latent_dim,
        num_classes=0,
        temperature=1.0,
        key=k1,
    )
    m = _params_per_value(likelihood, variance)
    dec = _wrap_decoder(
        likelihood, Dec(latent_dim, shape, chans[::-1], params_per_value=m, res_blocks=res_blocks, key=k2), variance
    )
    p = _prior(latent, prior, latent_dim, num_classes=0, temperature=1.0, n_components=10, prior_alpha=1.0, key=k3)
    return VAE(prior=p, encoder=enc, decoder=dec)


def discrete_vae(
    n_features,
    *,
    key: PRNGKeyArray,
    latent_dim: int = 20,
    hidden: int | Sequence[int] = (200,),
    likelihood: str = "bernoulli",
    activation: str | Callable[[Array], Array] = jax.nn.tanh,
    latent: str = "bernoulli",
    num_classes: int = 10,
    temperature: float = 2.0 / 3.0,
    baseline: str = "loo+learned",
    n_samples: int = 1,
    prior: str | None = None,
    variance: str = "diag",
) -> AbstractVAE:
    """Discrete-latent VAE: ``latent="bernoulli"`` or ``"categorical"`` trained by
    REINFORCE with a leave-one-out and/or learned input-dependent baseline (NVIL, Mnih
    & Gregor 2014, arXiv 1402.0030), or ``"concrete"``: the Gumbel-softmax relaxation
    (Maddison et al. 2017; Jang et al. 2017) trained by reparameterization.
    """
    _choice("latent", latent, ("bernoulli", "categorical", "concrete"))
    _choice("baseline", baseline, BASELINES)
    positive_int(n_samples, "n_samples")
    shape = _shape(n_features)
    k1, k2 = jax.random.split(key)
    model = vae(
        n_features,
        key=k1,
        latent_dim=latent_dim,
        hidden=hidden,
        likelihood=likelihood,
        activation=activation,
        latent=latent,
        num_classes=num_classes,
        temperature=temperature,
        prior=prior,
        variance=variance,
    )
    if latent != "concrete" and "learned" in baseline:
        net = MLP(math.prod(shape), 1, widths(hidden)[:1] or (32,), activation_fn(activation), key=k2)
        return BaselineVAE(model.prior, model.encoder, model.decoder, baseline=net)
    return model


def flow_vae(
    n_features,
    *,
    key: PRNGKeyArray,
    latent_dim: int = 2,
    hidden: int | Sequence[int] = (500,),
    likelihood: str = "bernoulli",
    latent: str = "planar",
    n_flows: int = 4,
    prior: str | None = None,
    activation: str | Callable[[Array], Array] = jax.nn.tanh,
    variance: str = "diag",
) -> AbstractVAE:
    """Flow posterior VAE: diagonal Gaussian base followed by ``n_flows`` planar layers
    (Rezende & Mohamed 2015, arXiv 1505.05770) or IAF-style affine autoregressive layers
    (``latent="iaf"``; Kingma et al. 2016, arXiv 1606.04934). KL by Monte Carlo."""
    _choice("latent", latent, ("planar", "iaf"))
    if latent == "iaf" and latent_dim < 2:
        raise ValueError("latent='iaf' needs latent_dim >= 2.")
    return vae(
        n_features,
        key=key,
        latent_dim=latent_dim,
        hidden=hidden,
        likelihood=likelihood,
        latent=latent,
        n_flows=n_flows,
        prior=prior,
        activation=activation,
        variance=variance,
    )


def svae(
    n_features,
    *,
    key: PRNGKeyArray,
    latent_dim: int = 10,
    hidden: int | Sequence[int] = (256, 128),
    likelihood: str = "bernoulli",
    activation: str | Callable[[Array], Array] = jax.nn.relu,
    distribution: str = "vmf",
    variance: str = "diag",
) -> AbstractVAE:
    """Hyperspherical VAE (S-VAE, Davidson et al. 2018, arXiv 1804.00891): latents on the
    unit sphere of ``R^latent_dim``, a von Mises-Fisher posterior (``distribution="vmf"``;
    ``"power"`` for the power spherical one of De Cao & Aziz 2020) and the uniform prior on
    the sphere; closed-form KL. MLPs ``hidden`` (the paper's 256, 128 with ReLU)."""
    from .hyperspherical import HypersphericalUniform, PowerSpherical, VonMisesFisher

    _choice("distribution", distribution, ("vmf", "power"))
    int_at_least(latent_dim, 2, "svae latent_dim (the dimension of R^d holding the unit sphere)")
    shape = _shape(n_features)
    _choice("likelihood", likelihood, LIKELIHOODS)
    k1, k2 = jax.random.split(key)
    net = _mlp_factory(shape, hidden, activation, k1)(latent_dim + 1)
    enc = (VonMisesFisher if distribution == "vmf" else PowerSpherical)(net)
    dec = decoder_for(
        likelihood, latent_dim, _features_arg(shape), widths(hidden)[::-1], activation, k2, variance=variance
    )
    return VAE(prior=HypersphericalUniform(latent_dim), encoder=enc, decoder=dec)


def hierarchical_vae(
    n_features,
    *,
    key: PRNGKeyArray,
    latent_dim: int = 50,
    layers: int | Sequence[int] = (100,),
    hidden: int | Sequence[int] = (200, 100),
    likelihood: str = "bernoulli",
    activation: str | Callable[[Array], Array] = jax.nn.tanh,
    ladder: bool = False,
    variance: str = "diag",
) -> AbstractVAE:
    """Hierarchical VAE with stochastic layers ``layers`` (bottom first) under a top layer of
    ``latent_dim`` (Burda et al. 2016's 784-100-50 by default): two ``tanh`` layers of width
    ``hidden[l]`` into and out of stochastic layer ``l``; ``ladder=True`` for top-down
    inference (Sonderby et al. 2016). ELBO/IWAE/log-likelihood as for any VAE (the latent is
    the concatenation of the layers, KL by Monte Carlo)."""
    from .hierarchical import FirstLayer, HierarchicalVAE, hierarchical_parts

    shape = _shape(n_features)
    _choice("likelihood", likelihood, LIKELIHOODS)
    dims = (*widths(layers, "layers"), positive_int(latent_dim, "latent_dim"))
    hid = widths(hidden)
    if len(hid) == 1:
        hid = hid * len(dims)
    if len(hid) != len(dims):
        raise ValueError(
            f"hierarchical_vae needs one hidden width per stochastic layer ({len(dims)}), got hidden={hid}."
        )
    k1, k2 = jax.random.split(key)
    act = activation_fn(activation)
    prior, enc = hierarchical_parts(math.prod(shape), dims, hid, act, ladder=ladder, key=k1)
    dec = decoder_for(likelihood, dims[0], _features_arg(shape), (hid[0],) * 2, act, k2, variance=variance)
    dec = eqx.tree_at(lambda c: c.net, dec, FirstLayer(dec.net, dims[0], sum(dims)))
    return HierarchicalVAE(prior, enc, dec)


PRESETS: dict[str, Callable[..., AbstractVAE]] = {
    "vae": vae,
    "beta_vae": beta_vae,
    "iwae": iwae,
    "dirichlet_vae": dirichlet_vae,
    "vamp_vae": vamp_vae,
    "conv_vae": conv_vae,
    "discrete_vae": discrete_vae,
    "flow_vae": flow_vae,
    "cvae": conditional.cvae,  # vk.fit(..., y=labels)
    "m2": conditional.m2,  # vk.fit(..., y=labels, -1 for unlabelled)
    "vq_vae": vq.vq_vae,
    "svae": svae,
    "hierarchical_vae": hierarchical_vae,
}


#: what ``hidden`` means for each preset (``vaekit train --help`` shows this)
WIDTH_MEANING = {
    "vae": "MLP hidden-layer widths",
    "beta_vae": "MLP hidden-layer widths",
    "iwae": "MLP hidden-layer widths",
    "dirichlet_vae": "MLP hidden-layer widths",
    "vamp_vae": "MLP hidden-layer widths",
    "conv_vae": "convolution channels per stride-2 stage",
    "discrete_vae": "MLP hidden-layer widths",
    "flow_vae": "MLP hidden-layer widths",
    "cvae": "MLP hidden-layer widths",
    "m2": "MLP hidden-layer widths (encoder, decoder and classifier)",
    "vq_vae": "convolution channels per stride-2 stage (MLP widths for flat data)",
    "svae": "MLP hidden-layer widths",
    "hierarchical_vae": "width of the two hidden layers into each stochastic layer, bottom first",
}


def default_hidden(name: str) -> tuple[int, ...]:
    """The default ``hidden`` of preset ``name`` (its own width, e.g. conv channels)."""
    _choice("model", name, tuple(PRESETS))
    fn = vae if PRESETS[name] in (beta_vae, iwae, vamp_vae) else PRESETS[name]
    return tuple(inspect.signature(fn).parameters["hidden"].default)


def widths_help() -> str:
    """One line per preset: what ``hidden`` means and its default."""
    return "\n".join(
        f"  {name:<14} {WIDTH_MEANING[name]}, default {','.join(map(str, default_hidden(name)))}" for name in PRESETS
    )


def valid_options(name: str) -> tuple[str, ...]:
    """The option names preset ``name`` accepts (besides ``n_features`` and ``key``)."""
    _choice("model", name, tuple(PRESETS))
    fn = PRESETS[name]
    names = [p.name for p in inspect.signature(fn).parameters.values() if p.kind == p.KEYWORD_ONLY and p.name != "key"]
    if fn in (beta_vae, iwae, vamp_vae):
        names += [n for n in valid_options("vae") if n not in names and n not in ("n_pseudo", "pseudo_inputs")]
    return tuple(names)


def _check_options(name: str, options: dict) -> None:
    valid = valid_options(name)
    bad = [k for k in options if k not in valid]
    if bad:
        raise ValueError(
            f"Unknown option(s) {', '.join(map(repr, bad))} for model {name!r}. Valid options: {', '.join(valid)}."
        )


def build(name: str, n_features: int | Sequence[int], *, key: PRNGKeyArray, **options) -> AbstractVAE:
    """Build the preset ``name`` for data with ``n_features`` features or data shape.

    ``activation`` may be a function or a name from :data:`ACTIVATIONS` (``"tanh"``).

    :param n_features: an int (flat data) or the shape of one example, e.g. ``(28, 28)``.
    :raises ValueError: unknown model or option (the message lists the valid ones).
    """
    _choice("model", name, tuple(PRESETS))
    _check_options(name, options)
    if isinstance(options.get("activation"), str):
        _choice("activation", options["activation"], tuple(ACTIVATIONS))
        options["activation"] = ACTIVATIONS[options["activation"]]
    return PRESETS[name](n_features, key=key, **options)


def fit_options(name: str, **options) -> dict[str, Any]:
    """Extra ``vk.fit`` keyword arguments that preset ``name`` with ``options`` needs.

    E.g. ``fit_options("iwae", k=10) == {"objective": "iwae", "n_samples": 10}``;
    ``{}`` when plain ``vk.fit`` defaults suit the preset.
    """
    _choice("model", name, tuple(PRESETS))
    _check_options(name, options)
    if name == "beta_vae":
        return {"beta": float(options.get("beta", 4.0))}
    if name == "vq_vae":
        return {"objective": vq.vq_objective}
    if name == "iwae":
        return {"objective": "iwae", "n_samples": int(options.get("k", 5))}
    if name == "discrete_vae" and options.get("latent", "bernoulli") != "concrete":
        return {
            "objective": reinforce_objective(
                n_samples=options.get("n_samples", 1), baseline=options.get("baseline", "loo+learned")
            )
        }
    if name == "vae" and options.get("latent") in ("bernoulli", "categorical"):
        return {"estimator": "reinforce"}
    return {}
