"""vaekit: composable variational autoencoders in JAX.

A VAE is a prior p(z), an encoder q(z|x) and a decoder p(x|z); each part is an
equinox module that holds its parameters::

    model = vk.VAE(
        prior=vk.StandardNormal(2),
        encoder=vk.Gaussian(vk.MLP(784, 4, hidden=(500,), key=k1), variance="diag"),
        decoder=vk.Bernoulli(vk.MLP(2, 784, hidden=(500,), key=k2)),
    )
    model, history = vk.fit(model, x_train, key=key, epochs=10, batch_size=200)
"""

from .core._fixed import Fixed as Fixed, fixed as fixed, resolve as resolve, trainable as trainable
from .core._onehot import OneHotCategoricalLogits as OneHotCategoricalLogits
from .core._conditionals import (
    Bernoulli as Bernoulli,
    Beta as Beta,
    Categorical as Categorical,
    Conditional as Conditional,
    ContinuousBernoulli as ContinuousBernoulli,
    Dirichlet as Dirichlet,
    Gaussian as Gaussian,
    Laplace as Laplace,
    StudentT as StudentT,
)
from .core._kl import kl_divergence as kl_divergence
from .core._initialization import init_output_bias as init_output_bias
from .core._model import VAE as VAE, Samples as Samples, encode as encode, reconstruct as reconstruct, sample as sample
from .zoo import presets as presets
from .nets import MLP as MLP
from .core._objectives import elbo as elbo, iwae_bound as iwae_bound, log_likelihood as log_likelihood
from .core._priors import (
    BernoulliPrior as BernoulliPrior,
    CategoricalPrior as CategoricalPrior,
    MixtureOfGaussians as MixtureOfGaussians,
    Normal as Normal,
    Prior as Prior,
    StandardNormal as StandardNormal,
)
from .training._loop import TrainState as TrainState, Trainer as Trainer, default_optimizer as default_optimizer, fit as fit, make_loss as make_loss
from .data import datasets as datasets
from .training.checkpoints import load as load, save as save
from .data.preprocessing import Preprocessor as Preprocessor
from .training import distributed as distributed
from .training._source import ArraySource as ArraySource, Source as Source
from .training._loop import map_batches as map_batches
from .training._loop import TrainingDiverged as TrainingDiverged
from . import anomaly as anomaly


def __getattr__(name: str):
    # VAEDetector needs scikit-learn (pip install vaekit[anomaly]); import it on first use.
    if name == "VAEDetector":
        from .anomaly.detector import VAEDetector

        return VAEDetector
    raise AttributeError(f"module 'vaekit' has no attribute {name!r}")


# --- model zoo (issue 5) ---
from .zoo import dirichlet as dirichlet, discrete as discrete, families as families, flows as flows, mmd as regularizers
from .zoo.families import (
    CauchyConditional as Cauchy,
    ExponentialConditional as Exponential,
    GumbelConditional as Gumbel,
    KumaraswamyConditional as Kumaraswamy,
    LogisticConditional as Logistic,
    WeibullConditional as Weibull,
)
from .zoo.dirichlet import DirichletLatent as DirichletLatent, moment_prior_update as moment_prior_update
from .zoo.discrete import (
    BaselineVAE as BaselineVAE,
    ConcretePrior as ConcretePrior,
    GumbelSoftmax as GumbelSoftmax,
    reinforce_objective as reinforce_objective,
)
from .zoo.flows import FlowPosterior as FlowPosterior, IAF as IAF, Planar as Planar
from .core._priors import DirichletPrior as DirichletPrior, FamilyPrior as FamilyPrior, VampPrior as VampPrior
from .zoo.mmd import mmd as mmd, mmd_objective as mmd_objective
from .zoo.vamp import VampVAE as VampVAE
from . import nets as nets
from .viz.latent import (
    plot_interpolation as plot_interpolation,
    plot_latent as plot_latent,
    plot_simplex as plot_simplex,
    plot_traversal as plot_traversal,
)
from .core._latent_paths import LatentPath as LatentPath, interpolate as interpolate, traverse as traverse

__version__ = "0.1.0"

__all__ = [
    "VAE",
    "ArraySource",
    "Source",
    "distributed",
    "map_batches",
    "VAEDetector",
    "anomaly",
    "Bernoulli",
    "BernoulliPrior",
    "Beta",
    "Categorical",
    "CategoricalPrior",
    "Conditional",
    "ContinuousBernoulli",
    "Dirichlet",
    "Fixed",
    "Gaussian",
    "Laplace",
    "MLP",
    "MixtureOfGaussians",
    "Normal",
    "OneHotCategoricalLogits",
    "Prior",
    "Samples",
    "StandardNormal",
    "StudentT",
    "TrainState",
    "Trainer",
    "TrainingDiverged",
    "default_optimizer",
    "elbo",
    "encode",
    "fit",
    "fixed",
    "iwae_bound",
    "kl_divergence",
    "init_output_bias",
    "log_likelihood",
    "make_loss",
    "datasets",
    "load",
    "save",
    "Preprocessor",
    "reconstruct",
    "resolve",
    "sample",
    "trainable",
    # model zoo
    "Cauchy",
    "Exponential",
    "Gumbel",
    "Kumaraswamy",
    "Logistic",
    "Weibull",
    "DirichletLatent",
    "moment_prior_update",
    "BaselineVAE",
    "ConcretePrior",
    "GumbelSoftmax",
    "reinforce_objective",
    "FlowPosterior",
    "IAF",
    "Planar",
    "DirichletPrior",
    "FamilyPrior",
    "VampPrior",
    "mmd",
    "mmd_objective",
    "VampVAE",
    "families",
    "nets",
    "plot_latent",
    "plot_simplex",
    "plot_interpolation",
    "plot_traversal",
    "interpolate",
    "traverse",
    "LatentPath",
    "dirichlet",
    "discrete",
    "flows",
    "regularizers",
]
