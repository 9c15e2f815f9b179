"""The model zoo: one module per model family (its latent, prior and objective together),
and ``presets`` that build them by name."""

from . import conditional as conditional
from . import dirichlet as dirichlet
from . import discrete as discrete
from . import families as families
from . import flows as flows
from . import hyperspherical as hyperspherical
from . import mmd as mmd
from . import presets as presets
from . import samplers as samplers
from . import vamp as vamp
from . import vq as vq
