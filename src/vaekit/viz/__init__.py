"""Plots of a trained model and the run report."""
