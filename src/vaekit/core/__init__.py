"""The core of a VAE: fixed/trainable arrays, conditional families, core priors, the model,
KL divergences, objectives (ELBO, IWAE bound, log-likelihood, the score-function term),
latent paths and initialisation."""

from ._checks import (
    as_data as as_data,
    check_batch_size as check_batch_size,
    check_data as check_data,
    support_fix as support_fix,
    support_hint as support_hint,
)
from ._conditionals import (
    AbstractDirichlet as AbstractDirichlet,
    AbstractFamily as AbstractFamily,
    AbstractLocScale as AbstractLocScale,
    Bernoulli as Bernoulli,
    Beta as Beta,
    Categorical as Categorical,
    Conditional as Conditional,
    ContinuousBernoulli as ContinuousBernoulli,
    ContinuousBernoulliLogits as ContinuousBernoulliLogits,
    Dirichlet as Dirichlet,
    Gaussian as Gaussian,
    Laplace as Laplace,
    SimplexWithin as SimplexWithin,
    StudentT as StudentT,
    event_dims as event_dims,
    input_size as input_size,
    mean_of as mean_of,
    positive as positive,
    split_outputs as split_outputs,
)
from ._density import (
    DensityConditional as DensityConditional,
    DensityPrior as DensityPrior,
    FunctionDistribution as FunctionDistribution,
)
from ._fixed import Fixed as Fixed, fixed as fixed, resolve as resolve, trainable as trainable, value as value
from ._initialization import init_output_bias as init_output_bias
from ._kl import KL_METHODS as KL_METHODS, has_analytic_kl as has_analytic_kl, kl_divergence as kl_divergence
from ._latent_paths import (
    LatentPath as LatentPath,
    decoder_mean as decoder_mean,
    interpolate as interpolate,
    on_simplex as on_simplex,
    posterior_mean as posterior_mean,
    traverse as traverse,
)
from ._model import (
    VAE as VAE,
    AbstractVAE as AbstractVAE,
    Samples as Samples,
    encode as encode,
    reconstruct as reconstruct,
    sample as sample,
)
from ._objectives import (
    ESTIMATORS as ESTIMATORS,
    ElboParts as ElboParts,
    check_options as check_options,
    elbo as elbo,
    elbo_parts as elbo_parts,
    iwae_bound as iwae_bound,
    log_likelihood as log_likelihood,
    log_weights as log_weights,
    loo_mean as loo_mean,
    resolve_estimator as resolve_estimator,
    score_function as score_function,
)
from ._onehot import OneHotCategoricalLogits as OneHotCategoricalLogits
from ._priors import (
    BernoulliPrior as BernoulliPrior,
    CategoricalPrior as CategoricalPrior,
    DiagonalNormalMixture as DiagonalNormalMixture,
    FamilyPrior as FamilyPrior,
    MixtureOfGaussians as MixtureOfGaussians,
    Normal as Normal,
    Prior as Prior,
    StandardNormal as StandardNormal,
    diagonal_normal_mixture as diagonal_normal_mixture,
)
