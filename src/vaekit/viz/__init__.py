"""Plots of a trained model (:mod:`.plots`, :mod:`.latent`) and the run report (:mod:`.report`)."""

from . import latent as latent
from . import plots as plots
from .latent import (
    plot_interpolation as plot_interpolation,
)
from .latent import (
    plot_latent as plot_latent,
)
from .latent import (
    plot_simplex as plot_simplex,
)
from .latent import (
    plot_traversal as plot_traversal,
)
from .latent import (
    simplex_to_plane as simplex_to_plane,
)
