"""The core of a VAE: fixed/trainable arrays, conditional families, core priors, the model,
KL divergences, objectives (ELBO, IWAE bound, log-likelihood, the score-function term),
latent paths and initialisation."""

from ._checks import (
    as_data as as_data,
)
from ._checks import (
    check_batch_size as check_batch_size,
)
from ._checks import (
    check_data as check_data,
)
from ._checks import (
    support_fix as support_fix,
)
from ._checks import (
    support_hint as support_hint,
)
from ._conditionals import (
    AbstractDirichlet as AbstractDirichlet,
)
from ._conditionals import (
    AbstractFamily as AbstractFamily,
)
from ._conditionals import (
    AbstractLocScale as AbstractLocScale,
)
from ._conditionals import (
    Bernoulli as Bernoulli,
)
from ._conditionals import (
    Beta as Beta,
)
from ._conditionals import (
    Categorical as Categorical,
)
from ._conditionals import (
    Conditional as Conditional,
)
from ._conditionals import (
    ContinuousBernoulli as ContinuousBernoulli,
)
from ._conditionals import (
    ContinuousBernoulliLogits as ContinuousBernoulliLogits,
)
from ._conditionals import (
    Dirichlet as Dirichlet,
)
from ._conditionals import (
    Gaussian as Gaussian,
)
from ._conditionals import (
    Laplace as Laplace,
)
from ._conditionals import (
    SimplexWithin as SimplexWithin,
)
from ._conditionals import (
    StudentT as StudentT,
)
from ._conditionals import (
    event_dims as event_dims,
)
from ._conditionals import (
    input_size as input_size,
)
from ._conditionals import (
    mean_of as mean_of,
)
from ._conditionals import (
    positive as positive,
)
from ._conditionals import (
    split_outputs as split_outputs,
)
from ._density import (
    DensityConditional as DensityConditional,
)
from ._density import (
    DensityPrior as DensityPrior,
)
from ._density import (
    FunctionDistribution as FunctionDistribution,
)
from ._fixed import Fixed as Fixed
from ._fixed import fixed as fixed
from ._fixed import resolve as resolve
from ._fixed import trainable as trainable
from ._fixed import value as value
from ._initialization import init_output_bias as init_output_bias
from ._kl import KL_METHODS as KL_METHODS
from ._kl import closed_form as closed_form
from ._kl import has_analytic_kl as has_analytic_kl
from ._kl import kl_divergence as kl_divergence
from ._latent_paths import (
    LatentPath as LatentPath,
)
from ._latent_paths import (
    decoder_mean as decoder_mean,
)
from ._latent_paths import (
    interpolate as interpolate,
)
from ._latent_paths import (
    on_simplex as on_simplex,
)
from ._latent_paths import (
    posterior_mean as posterior_mean,
)
from ._latent_paths import (
    traverse as traverse,
)
from ._model import (
    VAE as VAE,
)
from ._model import (
    AbstractVAE as AbstractVAE,
)
from ._model import (
    Samples as Samples,
)
from ._model import (
    encode as encode,
)
from ._model import (
    reconstruct as reconstruct,
)
from ._model import (
    sample as sample,
)
from ._objectives import (
    ESTIMATORS as ESTIMATORS,
)
from ._objectives import (
    TILE_PAIRS as TILE_PAIRS,
)
from ._objectives import (
    ElboParts as ElboParts,
)
from ._objectives import (
    check_options as check_options,
)
from ._objectives import (
    elbo as elbo,
)
from ._objectives import (
    elbo_parts as elbo_parts,
)
from ._objectives import (
    iwae_bound as iwae_bound,
)
from ._objectives import (
    log_likelihood as log_likelihood,
)
from ._objectives import (
    log_weights as log_weights,
)
from ._objectives import (
    loo_mean as loo_mean,
)
from ._objectives import (
    resolve_estimator as resolve_estimator,
)
from ._objectives import (
    score_function as score_function,
)
from ._onehot import OneHotCategoricalLogits as OneHotCategoricalLogits
from ._priors import (
    BernoulliPrior as BernoulliPrior,
)
from ._priors import (
    CategoricalPrior as CategoricalPrior,
)
from ._priors import (
    DiagonalNormalMixture as DiagonalNormalMixture,
)
from ._priors import (
    FamilyPrior as FamilyPrior,
)
from ._priors import (
    MixtureOfGaussians as MixtureOfGaussians,
)
from ._priors import (
    Normal as Normal,
)
from ._priors import (
    Prior as Prior,
)
from ._priors import (
    StandardNormal as StandardNormal,
)
from ._priors import (
    diagonal_normal_mixture as diagonal_normal_mixture,
)
