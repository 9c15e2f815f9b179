"""Anomaly detection: scores of a trained VAE (``vk.anomaly.score`` and one function per
method) and the scikit-learn detector ``VAEDetector`` (imported on first use)."""

from .scores import (
    METHODS as METHODS,
    STOCHASTIC as STOCHASTIC,
    elbo as elbo,
    jacodeco as jacodeco,
    latent as latent,
    log_likelihood as log_likelihood,
    reconstruction as reconstruction,
    reconstruction_mean as reconstruction_mean,
    reconstruction_probability as reconstruction_probability,
    score as score,
)
