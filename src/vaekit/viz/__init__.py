"""Plots of a trained model (:mod:`.plots`, :mod:`.latent`) and the run report (:mod:`.report`)."""

from . import latent as latent, plots as plots
from .latent import (
    plot_interpolation as plot_interpolation,
    plot_latent as plot_latent,
    plot_simplex as plot_simplex,
    plot_traversal as plot_traversal,
    simplex_to_plane as simplex_to_plane,
)
