"""The model zoo: one module per model family (its latent, prior and objective together),
and ``presets`` that build them by name."""

from . import dirichlet as dirichlet, discrete as discrete, families as families, flows as flows, mmd as mmd
from . import hyperspherical as hyperspherical, samplers as samplers
from . import presets as presets, vamp as vamp
