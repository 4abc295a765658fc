"""Checkpoints that carry their model config, so inference rebuilds the model from the file alone.

A dualgait checkpoint is a ``torch.save``'d dict of plain types and tensors (loaded with
``weights_only=True``, never unpickling code)::

    {"format": "dualgait-checkpoint", "format_version": 1,
     "spec": {"variant": "late", "dropout_rate": 0.5, "input_px": 224, "frames": 8, "width": 64},
     "model": <state dict>,
     "meta": {"synthetic": bool, ...free-form provenance: data, fold, epoch, metrics...}}
"""

from __future__ import annotations

import hashlib
import pickle
import zipfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from inference.errors import ModelLoadError
from inference.models.fusion import VARIANTS, FusionModel, create_model

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_FORMAT_VERSION",
    "ModelSpec",
    "load_checkpoint",
    "load_kinetics_state",
    "save_checkpoint",
    "state_fingerprint",
]

CHECKPOINT_FORMAT = "dualgait-checkpoint"
CHECKPOINT_FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """What is needed to rebuild a model and feed it: variant and the input it was trained on."""

    variant: str = "late"
    dropout_rate: float = 0.5
    input_px: int = 224
    frames: int = 8
    # backbone width (stem_dim_out): 64 is slow_r50; smaller for small demo models
    width: int = 64

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown model variant {self.variant!r}; choose one of {', '.join(VARIANTS)}")
        if self.input_px < 32 or self.frames < 1 or not 0.0 <= self.dropout_rate < 1.0 or self.width < 4:
            raise ValueError("input_px must be >= 32, frames >= 1, width >= 4 and dropout_rate in [0, 1)")

    def build(self) -> FusionModel:
        return create_model(variant=self.variant, dropout_rate=self.dropout_rate, width=self.width)


@dataclass(slots=True)
class Checkpoint:
    spec: ModelSpec
    model: FusionModel
    meta: dict[str, Any] = field(default_factory=dict)


def save_checkpoint(path: str | Path, model: FusionModel, spec: ModelSpec, *,
                    meta: Mapping[str, Any] | None = None) -> Path:
    """Write ``model``'s weights with ``spec`` and ``meta`` (atomically: temp file, then rename)."""
    if model.variant != spec.variant:
        raise ValueError(f"model is {model.variant!r} but spec says {spec.variant!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "spec": asdict(spec),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": dict(meta or {}),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def _read(path: Path) -> Any:
    if not path.is_file():
        raise ModelLoadError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # garbage, or pickled objects weights_only refuses to run
        raise ModelLoadError(f"cannot read checkpoint {path}: not a torch file of tensors "
                             "(truncated, another format, or pickled code, which is refused)") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0].split(". ")[0][:160]  # miniz adds advice
        raise ModelLoadError(f"cannot read checkpoint {path} (truncated or not a torch file?): {first}") from None
    except Exception as exc:  # weights_only refuses pickled code: an untrusted or foreign file
        raise ModelLoadError(f"cannot read checkpoint {path}: {type(exc).__name__}") from None


def checkpoint_spec(path: str | Path) -> ModelSpec:
    """The model spec of a dualgait checkpoint (variant, width, input size, frames), checked as
    :func:`load_checkpoint` checks it, without building the model; one-line :class:`ModelLoadError`."""
    return _payload_spec(Path(path))[1]


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Rebuild the model from a dualgait checkpoint; one-line :class:`ModelLoadError` naming any problem."""
    path = Path(path)
    payload, spec = _payload_spec(path)
    state = payload.get("model")
    if not isinstance(state, dict):
        raise ModelLoadError(f"checkpoint {path} carries no model weights")
    model = spec.build()
    _load_state_strict(model, state, f"checkpoint {path} ({spec.variant})")
    meta = payload.get("meta")
    return Checkpoint(spec=spec, model=model.eval(), meta=meta if isinstance(meta, dict) else {})


def _payload_spec(path: Path) -> tuple[dict[str, Any], ModelSpec]:
    payload = _read(path)
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        hint = ""
        if isinstance(payload, dict) and ("model_state" in payload or "blocks.0.conv.weight" in payload):
            hint = " (it looks like a Kinetics slow_r50 file: use it as pretrained weights for training)"
        raise ModelLoadError(f"{path} is not a dualgait checkpoint{hint}")
    version = payload.get("format_version")
    if version != CHECKPOINT_FORMAT_VERSION:
        raise ModelLoadError(f"checkpoint {path} has format version {version!r}; this dualgait reads "
                             f"version {CHECKPOINT_FORMAT_VERSION}")
    raw_spec = payload.get("spec")
    if not isinstance(raw_spec, dict):
        raise ModelLoadError(f"checkpoint {path} carries no model spec")
    try:
        spec = ModelSpec(**raw_spec)
    except (TypeError, ValueError) as exc:
        raise ModelLoadError(f"checkpoint {path} has a bad model spec: {exc}") from None
    return payload, spec


def _load_state_strict(model: FusionModel, state: Mapping[str, Any], what: str) -> None:
    expected = model.state_dict()
    for key in expected:
        if key not in state:
            raise ModelLoadError(f"{what}: missing weight {key!r}")
    for key, value in state.items():
        if key not in expected:
            raise ModelLoadError(f"{what}: unexpected weight {key!r}")
        if not isinstance(value, torch.Tensor) or value.shape != expected[key].shape:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ModelLoadError(f"{what}: weight {key!r} has shape {shape}, "
                                 f"expected {tuple(expected[key].shape)}")
    model.load_state_dict(state, strict=True)


def load_kinetics_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict of a Kinetics slow_r50 file (PyTorchVideo's ``SLOW_8x8_R50.pyth`` or a bare dict)."""
    path = Path(path)
    payload = _read(path)
    state = payload.get("model_state", payload) if isinstance(payload, dict) else None
    if not isinstance(state, dict) or "blocks.0.conv.weight" not in state:
        raise ModelLoadError(f"{path} is not a slow_r50 state dict (no 'blocks.0.conv.weight')")
    return state


def state_fingerprint(model: torch.nn.Module, spec: ModelSpec) -> str:
    """sha256 over the spec and every weight: names the model in engine cache keys."""
    digest = hashlib.sha256(repr(sorted(asdict(spec).items())).encode())
    for key, value in model.state_dict().items():
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
