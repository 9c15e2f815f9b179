"""Networks for encoders and decoders."""

from .adapters import (
    Adapted as Adapted,
    from_equinox as from_equinox,
    from_haiku as from_haiku,
    from_init_apply as from_init_apply,
    from_linen as from_linen,
    from_nnx as from_nnx,
)
from .conv import (
    Conv1dDecoder as Conv1dDecoder,
    Conv1dEncoder as Conv1dEncoder,
    ConvDecoder as ConvDecoder,
    ConvEncoder as ConvEncoder,
    ResBlock as ResBlock,
    Unflatten as Unflatten,
)
from .mlp import MLP as MLP

__all__ = [
    "MLP",
    "Adapted",
    "Conv1dDecoder",
    "Conv1dEncoder",
    "ConvDecoder",
    "ConvEncoder",
    "ResBlock",
    "Unflatten",
    "from_equinox",
    "from_haiku",
    "from_init_apply",
    "from_linen",
    "from_nnx",
]
