"""The model variants (built by :func:`inference.models.fusion.create_model`), free of torch.

The one list of variant names: the model code, ``inference.model.variant`` and ``training.variant`` all use
it, and reading a config needs no torch.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = ["VARIANTS", "Variant"]

Variant = Literal["single_front", "single_side", "early", "late", "slow", "gated"]
VARIANTS: tuple[str, ...] = get_args(Variant)
