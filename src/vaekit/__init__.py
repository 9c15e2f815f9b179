"""vaekit: composable variational autoencoders in JAX.

A VAE is a prior p(z), an encoder q(z|x) and a decoder p(x|z); each part is an
equinox module that holds its parameters::

    model = vk.VAE(
        prior=vk.StandardNormal(2),
        encoder=vk.Gaussian(vk.MLP(784, 4, hidden=(500,), key=k1), variance="diag"),
        decoder=vk.Bernoulli(vk.MLP(2, 784, hidden=(500,), key=k2)),
    )
    model, history = vk.fit(model, x_train, key=key, epochs=10, batch_size=200)

This file only re-exports, layer by layer: ``core`` (the model and its math), ``nets``,
``zoo`` (model families and presets), ``training``, ``data``, ``runs``, ``anomaly`` and
``viz``. Importing vaekit registers its closed-form KL divergences in numpyro's
dispatcher (see :mod:`vaekit.core._kl`).
"""

# --- core: the model, its parts and objectives ---
from .core import (
    VAE as VAE,
    AbstractVAE as AbstractVAE,
    Bernoulli as Bernoulli,
    BernoulliPrior as BernoulliPrior,
    Beta as Beta,
    Categorical as Categorical,
    CategoricalPrior as CategoricalPrior,
    Conditional as Conditional,
    ContinuousBernoulli as ContinuousBernoulli,
    DensityConditional as DensityConditional,
    DensityPrior as DensityPrior,
    Dirichlet as Dirichlet,
    FamilyPrior as FamilyPrior,
    Fixed as Fixed,
    Gaussian as Gaussian,
    LatentPath as LatentPath,
    Laplace as Laplace,
    MixtureOfGaussians as MixtureOfGaussians,
    Normal as Normal,
    OneHotCategoricalLogits as OneHotCategoricalLogits,
    Prior as Prior,
    Samples as Samples,
    StandardNormal as StandardNormal,
    StudentT as StudentT,
    elbo as elbo,
    encode as encode,
    fixed as fixed,
    init_output_bias as init_output_bias,
    interpolate as interpolate,
    iwae_bound as iwae_bound,
    kl_divergence as kl_divergence,
    log_likelihood as log_likelihood,
    reconstruct as reconstruct,
    resolve as resolve,
    sample as sample,
    trainable as trainable,
    traverse as traverse,
)

# --- networks ---
from . import nets as nets
from .nets import MLP as MLP

# --- model zoo ---
# vk.Cauchy, vk.Exponential, ... are the conditional forms (encoders/decoders); the
# distributions themselves are vk.families.Cauchy, vk.families.Exponential, ...
from .zoo import (
    dirichlet as dirichlet,
    discrete as discrete,
    families as families,
    flows as flows,
    hyperspherical as hyperspherical,
    mmd as regularizers,
    presets as presets,
)
from .zoo.dirichlet import DirichletLatent as DirichletLatent, DirichletPrior as DirichletPrior
from .zoo.dirichlet import moment_prior_update as moment_prior_update
from .zoo.discrete import (
    BaselineVAE as BaselineVAE,
    ConcretePrior as ConcretePrior,
    GumbelSoftmax as GumbelSoftmax,
    reinforce_objective as reinforce_objective,
)
from .zoo.families import (
    CauchyConditional as Cauchy,
    ExponentialConditional as Exponential,
    GumbelConditional as Gumbel,
    KumaraswamyConditional as Kumaraswamy,
    LogisticConditional as Logistic,
    WeibullConditional as Weibull,
)
from .zoo.flows import IAF as IAF, FlowPosterior as FlowPosterior, Planar as Planar
from .zoo.hyperspherical import (
    HypersphericalUniform as HypersphericalUniform,
    HypersphericalUniformDistribution as HypersphericalUniformDistribution,
    PowerSpherical as PowerSpherical,
    PowerSphericalDistribution as PowerSphericalDistribution,
    VonMisesFisher as VonMisesFisher,
    VonMisesFisherDistribution as VonMisesFisherDistribution,
)
from .zoo.mmd import mmd as mmd, mmd_objective as mmd_objective
from .zoo.samplers import GaussianMixtureSampler as GaussianMixtureSampler, fit_latent_sampler as fit_latent_sampler
from .zoo.vamp import VampPrior as VampPrior, VampVAE as VampVAE
from .zoo import conditional as conditional  # conditional and semi-supervised models
from .zoo.conditional import ConditionalVAE as ConditionalVAE, M2VAE as M2VAE
from .zoo import vq as vq  # VQ-VAE
from .zoo.vq import VQVAE as VQVAE

# --- training ---
from .training import (
    ArraySource as ArraySource,
    Source as Source,
    Trainer as Trainer,
    TrainingDiverged as TrainingDiverged,
    TrainState as TrainState,
    default_optimizer as default_optimizer,
    distributed as distributed,
    fit as fit,
    loggers as loggers,
    make_loss as make_loss,
    map_batches as map_batches,
)

# --- data ---
from .data import Preprocessor as Preprocessor, datasets as datasets

# --- run folders and model files ---
from .runs import load as load, save as save

# --- anomaly detection (VAEDetector, which needs scikit-learn, is imported on first use) ---
from . import anomaly as anomaly

# --- plots ---
from .viz import (
    plot_interpolation as plot_interpolation,
    plot_latent as plot_latent,
    plot_simplex as plot_simplex,
    plot_traversal as plot_traversal,
)

from ._version import __version__ as __version__


def __getattr__(name: str):
    # VAEDetector needs scikit-learn (pip install vaekit[anomaly]); import it on first use.
    if name == "VAEDetector":
        from .anomaly.detector import VAEDetector

        return VAEDetector
    raise AttributeError(f"module 'vaekit' has no attribute {name!r}")


__all__ = [
    # core
    "VAE",
    "AbstractVAE",
    "Bernoulli",
    "BernoulliPrior",
    "Beta",
    "Categorical",
    "CategoricalPrior",
    "Conditional",
    "ContinuousBernoulli",
    "DensityConditional",
    "DensityPrior",
    "Dirichlet",
    "FamilyPrior",
    "Fixed",
    "Gaussian",
    "LatentPath",
    "Laplace",
    "MixtureOfGaussians",
    "Normal",
    "OneHotCategoricalLogits",
    "Prior",
    "Samples",
    "StandardNormal",
    "StudentT",
    "elbo",
    "encode",
    "fixed",
    "init_output_bias",
    "interpolate",
    "iwae_bound",
    "kl_divergence",
    "log_likelihood",
    "reconstruct",
    "resolve",
    "sample",
    "trainable",
    "traverse",
    # networks
    "MLP",
    "nets",
    # model zoo
    "BaselineVAE",
    "Cauchy",
    "ConcretePrior",
    "DirichletLatent",
    "DirichletPrior",
    "Exponential",
    "FlowPosterior",
    "GaussianMixtureSampler",
    "Gumbel",
    "GumbelSoftmax",
    "HypersphericalUniform",
    "HypersphericalUniformDistribution",
    "IAF",
    "Kumaraswamy",
    "Logistic",
    "Planar",
    "PowerSpherical",
    "PowerSphericalDistribution",
    "VampPrior",
    "VampVAE",
    "VonMisesFisher",
    "VonMisesFisherDistribution",
    "Weibull",
    "dirichlet",
    "discrete",
    "families",
    "fit_latent_sampler",
    "flows",
    "hyperspherical",
    "mmd",
    "mmd_objective",
    "moment_prior_update",
    "presets",
    "ConditionalVAE",
    "M2VAE",
    "conditional",
    "VQVAE",
    "vq",
    "regularizers",
    "reinforce_objective",
    # training
    "ArraySource",
    "Source",
    "TrainState",
    "Trainer",
    "TrainingDiverged",
    "default_optimizer",
    "distributed",
    "fit",
    "loggers",
    "make_loss",
    "map_batches",
    # data
    "Preprocessor",
    "datasets",
    # run folders and model files
    "load",
    "save",
    # anomaly detection
    "VAEDetector",
    "anomaly",
    # plots
    "plot_interpolation",
    "plot_latent",
    "plot_simplex",
    "plot_traversal",
]
