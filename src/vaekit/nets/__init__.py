"""Networks for encoders and decoders."""

from . import stateful as stateful
from .adapters import (
    Adapted as Adapted,
)
from .adapters import (
    from_equinox as from_equinox,
)
from .adapters import (
    from_haiku as from_haiku,
)
from .adapters import (
    from_init_apply as from_init_apply,
)
from .adapters import (
    from_linen as from_linen,
)
from .adapters import (
    from_nnx as from_nnx,
)
from .conv import (
    Conv1dDecoder as Conv1dDecoder,
)
from .conv import (
    Conv1dEncoder as Conv1dEncoder,
)
from .conv import (
    ConvDecoder as ConvDecoder,
)
from .conv import (
    ConvEncoder as ConvEncoder,
)
from .conv import (
    ResBlock as ResBlock,
)
from .conv import (
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
