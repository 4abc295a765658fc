"""The model variants (built by :func:`inference.models.fusion.create_model`), free of torch.

The one list of variant names: the model code, ``inference.model.variant`` and ``training.variant`` all use
it, and reading a config needs no torch. :func:`variant_views` says which cameras a variant needs, so a
config can be checked against its model before anything loads (one camera needs a single-view model).
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = ["VARIANTS", "Variant", "default_variant", "variant_views"]

Variant = Literal["single_front", "single_side", "early", "late", "slow", "gated"]
VARIANTS: tuple[str, ...] = get_args(Variant)


def variant_views(variant: str) -> tuple[str, ...]:
    """The views a variant's model takes: ``("front",)``, ``("side",)`` or ``("front", "side")``."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown model variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    if variant.startswith("single_"):
        return (variant.removeprefix("single_"),)
    return ("front", "side")


def default_variant(views: tuple[str, ...]) -> str:
    """The variant used without a checkpoint or ``model.variant``: late fusion for two cameras, else single-view."""
    return f"single_{views[0]}" if len(views) == 1 else "late"
