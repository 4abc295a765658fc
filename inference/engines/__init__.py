"""Inference engines behind one interface: PyTorch, ONNX Runtime, OpenVINO and TensorRT (see docs/engines.md)."""

from inference.engines.base import (
    Engine,
    EngineError,
    ModelRunner,
    available_cores,
    batch_buckets,
    preprocess,
    preprocess_batch,
    set_torch_threads,
)

__all__ = ["Engine", "EngineError", "ModelRunner", "available_cores", "batch_buckets", "preprocess",
           "preprocess_batch", "set_torch_threads"]
