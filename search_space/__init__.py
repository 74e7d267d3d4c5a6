"""What an architecture is: the spec, the block catalogue, the builder, anchors and the space.

Imports none of nas/trainers/analysis, nor optuna, ray or plotly.
"""

from search_space.errors import InputError, SpecError
from search_space.registry import get_block, list_blocks, list_conv_units, register_block
from search_space.spec import ArchSpec, StageSpec

__all__ = [
    "ArchSpec",
    "StageSpec",
    "InputError",
    "SpecError",
    "build_model",
    "reparameterize_model",
    "get_block",
    "list_blocks",
    "list_conv_units",
    "register_block",
]


def __getattr__(name: str):
    # Lazy: building models imports torch and the whole catalogue.
    if name == "build_model":
        from search_space.factory import build_model

        return build_model
    if name == "reparameterize_model":
        from search_space.reparam import reparameterize_model

        return reparameterize_model
    raise AttributeError(name)
