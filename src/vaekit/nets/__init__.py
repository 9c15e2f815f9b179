"""Networks for encoders and decoders."""

from . import stateful as stateful
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
from .stateful import StatefulNet as StatefulNet

__all__ = [
    "MLP",
    "Adapted",
    "Conv1dDecoder",
    "Conv1dEncoder",
    "ConvDecoder",
    "ConvEncoder",
    "ResBlock",
    "StatefulNet",
    "Unflatten",
    "from_equinox",
    "from_haiku",
    "from_init_apply",
    "from_linen",
    "from_nnx",
    "stateful",
]
