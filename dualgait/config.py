"""The whole dualgait configuration: one section per component (see configs/default.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from aggregator.config import AggregatorConfig
from capture.config import CaptureConfig
from dualgait.configtools import apply_override, from_mapping, load_yaml, merge, to_mapping
from dualgait.security import SecurityConfig
from dualgait.supervisor import SupervisorConfig
from inference.config import InferenceConfig
from training.config import TrainingConfig


@dataclass(slots=True)
class EndpointsConfig:
    """ZeroMQ endpoints. Capture binds ``front``/``side``; inference binds ``scores``.

    Loopback or ipc by default: patient video must not leave the host unencrypted.
    """

    front: str = "tcp://127.0.0.1:5701"
    side: str = "tcp://127.0.0.1:5702"
    scores: str = "tcp://127.0.0.1:5703"

    def view(self, view: str) -> str:
        return self.front if view == "front" else self.side


@dataclass(slots=True)
class DualgaitConfig:
    endpoints: EndpointsConfig = field(default_factory=EndpointsConfig)
    supervisor: SupervisorConfig = field(default_factory=SupervisorConfig)
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    aggregator: AggregatorConfig = field(default_factory=AggregatorConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    security: SecurityConfig = field(default_factory=SecurityConfig)


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> DualgaitConfig:
    """Defaults <- YAML file <- ``section.key=value`` overrides; validated (ConfigError on mistakes)."""
    data: dict[str, Any] = load_yaml(path) if path is not None else {}
    for assignment in overrides:
        apply_override(data, assignment)
    return from_mapping(DualgaitConfig, data)


def with_overrides(cfg: DualgaitConfig, overrides: dict[str, Any]) -> DualgaitConfig:
    """A validated copy of ``cfg`` with nested ``overrides`` merged in."""
    return from_mapping(DualgaitConfig, merge(to_mapping(cfg), overrides))


def dump_config(cfg: DualgaitConfig, path: str | Path) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(to_mapping(cfg), fh, sort_keys=False)
