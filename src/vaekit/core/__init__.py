"""The core of a VAE: fixed/trainable arrays, conditional families, core priors, the model,
KL divergences, objectives (ELBO, IWAE bound, log-likelihood) and initialisation."""

from ._checks import as_data as as_data, check_batch_size as check_batch_size, check_data as check_data
from ._conditionals import (
    Bernoulli as Bernoulli,
    Beta as Beta,
    Categorical as Categorical,
    Conditional as Conditional,
    ContinuousBernoulli as ContinuousBernoulli,
    ContinuousBernoulliLogits as ContinuousBernoulliLogits,
    Dirichlet as Dirichlet,
    Gaussian as Gaussian,
    Laplace as Laplace,
    StudentT as StudentT,
)
from ._fixed import Fixed as Fixed, fixed as fixed, resolve as resolve, trainable as trainable, value as value
from ._initialization import init_output_bias as init_output_bias
from ._kl import has_analytic_kl as has_analytic_kl, kl_divergence as kl_divergence
from ._latent_paths import (
    LatentPath as LatentPath,
    decoder_mean as decoder_mean,
    interpolate as interpolate,
    on_simplex as on_simplex,
    posterior_mean as posterior_mean,
    traverse as traverse,
)
from ._model import VAE as VAE, Samples as Samples, encode as encode, reconstruct as reconstruct, sample as sample
from ._objectives import (
    elbo as elbo,
    iwae_bound as iwae_bound,
    log_likelihood as log_likelihood,
    resolve_estimator as resolve_estimator,
)
from ._onehot import OneHotCategoricalLogits as OneHotCategoricalLogits
from ._priors import (
    BernoulliPrior as BernoulliPrior,
    CategoricalPrior as CategoricalPrior,
    DiagonalNormalMixture as DiagonalNormalMixture,
    DirichletPrior as DirichletPrior,
    FamilyPrior as FamilyPrior,
    MixtureOfGaussians as MixtureOfGaussians,
    Normal as Normal,
    Prior as Prior,
    StandardNormal as StandardNormal,
    VampPrior as VampPrior,
)
