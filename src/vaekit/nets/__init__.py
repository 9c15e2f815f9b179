"""Networks for encoders and decoders."""

from .mlp import MLP as MLP

__all__ = ["MLP"]
