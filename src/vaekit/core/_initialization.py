"""Data-dependent initialisation of a VAE's decoder.

``init_output_bias`` sets the decoder's output bias to the data's marginal, so that
before training ``p(x | z)`` already predicts the average example whatever ``z`` is
(the trick of Burda et al.'s IWAE code). Without it, the first updates of a Bernoulli
decoder are spent learning the mean image, and the encoder is pushed the same way for
every input; with a prior that moves with the encoder (a VampPrior) or a small KL weight
this can saturate a tanh encoder so that it ignores ``x`` for good (the posterior
collapses at the mean-image loss).
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from ._conditionals import AbstractLocScale, Bernoulli
from ._fixed import Fixed
from ._model import AbstractVAE


def init_output_bias(model: AbstractVAE, x: ArrayLike, *, eps: float = 1e-3) -> AbstractVAE:
    """``model`` with its decoder's output bias set from data ``x [n, *data]``.

    Bernoulli decoders get ``logit(clip(mean(x), eps, 1 - eps))``; Gaussian, Laplace and
    Student-t decoders get the mean of ``x`` in their location outputs (their scale
    outputs are left as they are). The decoder's network must end in a linear layer
    with a bias and no final activation, as :class:`vaekit.MLP` does by default.

    :raises TypeError: for other decoder families or networks (the message says which).
    :raises ValueError: when ``x`` does not have the decoder's output size.
    """
    dec = model.decoder
    net = dec.net
    layers = getattr(net, "layers", None)
    last = layers[-1] if isinstance(layers, (tuple, list)) and layers else None
    if not isinstance(last, eqx.nn.Linear) or last.bias is None or isinstance(last.bias, Fixed):
        raise TypeError(
            "init_output_bias needs a decoder network whose last layer is a trainable "
            f"eqx.nn.Linear with a bias (e.g. vk.MLP); got {type(net).__name__}."
        )
    final = getattr(net, "final_activation", None)
    if final is not None and float(final(jnp.asarray(2.0))) != 2.0:
        raise TypeError("init_output_bias needs a decoder MLP without a final_activation.")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 2 or x.shape[0] < 1:
        raise ValueError(f"init_output_bias needs data [n, *data] with n >= 1, got shape {x.shape}.")
    mean = x.reshape(x.shape[0], -1).mean(0)
    if not np.all(np.isfinite(mean)):
        raise ValueError("init_output_bias: the data contain NaN or inf values.")
    bias = np.asarray(last.bias, dtype=np.float64)
    d = mean.shape[0]
    if isinstance(dec, Bernoulli):
        p = np.clip(mean, eps, 1 - eps)
        loc_part, size = np.log(p) - np.log1p(-p), d
    elif isinstance(dec, AbstractLocScale):
        loc_part, size = mean, {"diag": 2 * d, "scalar": d + 1}.get(dec.variance, d)
    else:
        raise TypeError(
            f"init_output_bias supports Bernoulli, Gaussian, Laplace and StudentT decoders, got {type(dec).__name__}."
        )
    if bias.shape != (size,):
        raise ValueError(
            f"init_output_bias: the data have {d} features per example, so the decoder "
            f"should output {size} values, but it outputs {bias.shape}; pass the training "
            "data the model is built for."
        )
    new = bias.copy()
    new[:d] = loc_part  # location (or logits) come first in every layout
    new_bias = jnp.asarray(new, dtype=last.bias.dtype)
    return eqx.tree_at(lambda m: m.decoder.net.layers[-1].bias, model, new_bias)
