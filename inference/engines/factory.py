"""Build the configured model and engine: checkpoint or random init -> torch / ONNX -> engine -> runner."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from inference.config import ModelConfig
from inference.engines.base import Engine, EngineError, ModelRunner
from inference.engines.cache import EngineCache
from inference.engines.onnx_export import ONNX_OPSET, export_onnx
from inference.errors import ModelLoadError
from inference.models.checkpoint import ModelSpec, load_checkpoint, state_fingerprint
from inference.models.fusion import FusionModel

__all__ = ["LoadedModel", "build_engine", "create_runner", "int8_model_cached", "load_model", "onnx_artifact"]

log = logging.getLogger(__name__)

Calibration = Iterable[Sequence[np.ndarray]]


@dataclass(slots=True)
class LoadedModel:
    model: FusionModel
    spec: ModelSpec
    untrained: bool
    source: str  # checkpoint file name, or "untrained, random init seed N"
    meta: dict[str, Any] = field(default_factory=dict)
    _fingerprint: str | None = None

    @property
    def synthetic(self) -> bool:
        return bool(self.meta.get("synthetic", False))

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = state_fingerprint(self.model, self.spec)
        return self._fingerprint


def load_model(cfg: ModelConfig, *, input_px: int, frames: int) -> LoadedModel:
    """The checkpoint in ``cfg.weights`` (checked against the pipeline's input), else a seeded random init."""
    if cfg.weights is None:
        torch.manual_seed(cfg.seed)
        spec = ModelSpec(variant=cfg.variant or "late", input_px=input_px, frames=frames)
        return LoadedModel(spec.build().eval(), spec, untrained=True, source=f"untrained, random init seed {cfg.seed}")
    ckpt = load_checkpoint(cfg.weights)
    spec, name = ckpt.spec, Path(cfg.weights).name
    if cfg.variant is not None and cfg.variant != spec.variant:
        raise ModelLoadError(f"checkpoint {name} holds a {spec.variant!r} model but model.variant is "
                             f"{cfg.variant!r} (set it to null to follow the checkpoint)")
    if spec.input_px != input_px or spec.frames != frames:
        raise ModelLoadError(f"checkpoint {name} was trained on {spec.frames} frames of {spec.input_px} px but the "
                             f"pipeline makes {frames} of {input_px} px (set inference.crop.input_px / "
                             f"inference.window.frames to match)")
    return LoadedModel(ckpt.model, spec, untrained=False, source=name, meta=ckpt.meta)


def _onnx_key(loaded: LoadedModel, max_batch: int) -> dict[str, Any]:
    return {"fingerprint": loaded.fingerprint(), "variant": loaded.spec.variant, "opset": ONNX_OPSET,
            "torch": torch.__version__, "max_batch": max_batch, "input_px": loaded.spec.input_px,
            "frames": loaded.spec.frames}


def _int8_key(onnx_digest: str) -> dict[str, Any]:
    import openvino as ov

    return {"onnx": onnx_digest, "openvino": ov.get_version(), "precision": "int8"}


def int8_model_cached(loaded: LoadedModel, cfg: ModelConfig) -> bool:
    """Whether ``cfg``'s cache holds the int8 model of ``loaded`` (a look at the cache: nothing exported or
    compiled)."""
    cache = EngineCache(cfg.cache_dir)
    onnx_digest = cache.digest(_onnx_key(loaded, cfg.max_batch))
    return (cache.entry("openvino-int8", _int8_key(onnx_digest)) / "key.json").is_file()


def onnx_artifact(loaded: LoadedModel, cache: EngineCache, *, max_batch: int) -> tuple[Path, str]:
    """The model's ONNX file from the cache, exporting it on a miss; returns ``(path, cache digest)``."""
    key = _onnx_key(loaded, max_batch)

    def build(folder: Path) -> None:
        log.info("exporting %s to ONNX (first use of these weights; cached afterwards)", loaded.spec.variant)
        export_onnx(loaded.model, folder / "model.onnx", input_px=loaded.spec.input_px, frames=loaded.spec.frames,
                    max_batch=max_batch)

    folder, _ = cache.get_or_build("onnx", key, build)
    return folder / "model.onnx", cache.digest(key)


def _int8_artifact(loaded: LoadedModel, cache: EngineCache, onnx_digest: str, onnx_path: Path,
                   calibration: Calibration | None) -> Path:
    key = _int8_key(onnx_digest)
    if calibration is None and (cache.rebuild or not (cache.entry("openvino-int8", key) / "key.json").is_file()):
        raise EngineError("no int8 model for these weights yet: build it once with "
                          "`dualgait export --format openvino --precision int8` (it calibrates on a recording)")

    def build(folder: Path) -> None:
        from inference.engines.openvino_engine import quantize_int8

        assert calibration is not None
        windows = list(calibration)
        quantize_int8(onnx_path, folder / "model.xml", views=loaded.model.views, calibration=windows)
        (folder / "calibration.json").write_text(json.dumps({"windows": len(windows)}) + "\n")

    folder, _ = cache.get_or_build("openvino-int8", key, build)
    return folder / "model.xml"


def build_engine(loaded: LoadedModel, cfg: ModelConfig, *, calibration: Calibration | None = None,
                 rebuild: bool = False) -> Engine:
    """The engine ``cfg`` asks for (``auto`` parts resolved), running ``loaded``'s model; ONNX-based engines are
    cached on disk."""
    from inference.engines.auto import resolve_engine

    cfg, _ = resolve_engine(cfg)
    threads = cfg.threads
    if cfg.engine == "torch":
        from inference.engines.torch_engine import TorchEngine

        return TorchEngine(loaded.model, device=cfg.device, precision=cfg.precision, cuda_graphs=cfg.cuda_graphs)
    if cfg.engine == "tensorrt":  # fail in one line before minutes of ONNX export
        from inference.engines.tensorrt_engine import require_tensorrt

        require_tensorrt()
    cache = EngineCache(cfg.cache_dir, rebuild=rebuild)
    onnx_path, onnx_digest = onnx_artifact(loaded, cache, max_batch=cfg.max_batch)
    views, outputs = loaded.model.views, loaded.model.output_names
    if cfg.engine == "openvino":
        from inference.engines.openvino_engine import OpenVINOEngine

        path = onnx_path
        if cfg.precision == "int8":
            path = _int8_artifact(loaded, cache, onnx_digest, onnx_path, calibration)
        return OpenVINOEngine(path, views=views, output_names=outputs, precision=cfg.precision, threads=threads)
    if cfg.engine == "onnxruntime":
        from inference.engines.onnxruntime_engine import OnnxRuntimeEngine

        return OnnxRuntimeEngine(onnx_path, views=views, output_names=outputs, device=cfg.device, threads=threads)
    from inference.engines.tensorrt_engine import TensorRTEngine

    return TensorRTEngine(onnx_path, views=views, output_names=outputs, precision=cfg.precision,
                          max_batch=cfg.max_batch, frames=loaded.spec.frames, input_px=loaded.spec.input_px,
                          cache=cache, onnx_digest=onnx_digest)


def create_runner(cfg: ModelConfig, *, input_px: int, frames: int,
                  calibration: Callable[[LoadedModel], Calibration] | None = None) -> ModelRunner:
    """The runner of ``cfg``'s model; ``engine: auto`` (and auto device/precision) resolved here, in one log line.

    Where auto chose OpenVINO int8 but no int8 model has been calibrated for these weights (the app calibrates
    once on a recording before it starts the processes: ``offline.clips.ensure_int8_engine``), OpenVINO fp32 runs
    instead, with a warning; an explicit ``precision: int8`` without one stays an error."""
    t0 = time.perf_counter()
    from inference.engines.auto import resolve_engine

    auto_precision = cfg.precision == "auto"
    cfg, choice = resolve_engine(cfg)
    log.info("model engine: %s", choice)
    loaded = load_model(cfg, input_px=input_px, frames=frames)
    try:
        engine = build_engine(loaded, cfg, calibration=calibration(loaded) if calibration else None)
    except EngineError:
        if not (auto_precision and cfg.engine == "openvino" and cfg.precision == "int8"):
            raise
        log.warning("no int8 model calibrated for these weights yet (dualgait run, demo and score calibrate once "
                    "on a recording): running OpenVINO fp32 instead")
        cfg = dataclasses.replace(cfg, precision="fp32")
        engine = build_engine(loaded, cfg)
    log.info("model %s on %s ready in %.1f s", loaded.spec.variant, engine.name, time.perf_counter() - t0)
    return ModelRunner(engine, spec=loaded.spec, untrained=loaded.untrained, synthetic=loaded.synthetic,
                       source=loaded.source, max_batch=cfg.max_batch)
