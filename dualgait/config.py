"""The whole dualgait configuration: one section per component (see configs/default.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from aggregator.config import AggregatorConfig
from capture.config import CaptureConfig
from core.configtools import apply_override, from_mapping, load_yaml, to_mapping
from core.messages import DEFAULT_WALKWAY, check_walkway_id
from core.security import SecurityConfig
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
class WalkwayConfig:
    """One more walkway (front/side camera pair) served by the same inference process (docs/inference.md).

    The pair of ``capture`` and ``endpoints`` is walkway ``main``; each entry of ``walkways`` adds one, with its
    own cameras and endpoints. Everything else (model, detector, windows, capture settings) is shared.
    """

    id: str
    front: str  # capture source of its front camera (as capture.front)
    side: str
    front_endpoint: str  # where its front capture binds (as endpoints.front)
    side_endpoint: str
    # its patient walkway regions (as inference.patient.walkway_front/_side); null: those of inference.patient
    walkway_front: list[float] | None = None
    walkway_side: list[float] | None = None

    def __post_init__(self) -> None:
        check_walkway_id(self.id)
        if self.id == DEFAULT_WALKWAY:
            raise ValueError(f"walkway id {DEFAULT_WALKWAY!r} is the pair in capture/endpoints; choose another")


@dataclass(slots=True)
class DualgaitConfig:
    endpoints: EndpointsConfig = field(default_factory=EndpointsConfig)
    supervisor: SupervisorConfig = field(default_factory=SupervisorConfig)
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    aggregator: AggregatorConfig = field(default_factory=AggregatorConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    security: SecurityConfig = field(default_factory=SecurityConfig)
    walkways: list[WalkwayConfig] = field(default_factory=list)

    def __post_init__(self) -> None:
        ids = [DEFAULT_WALKWAY] + [w.id for w in self.walkways]
        if len(set(ids)) != len(ids):
            raise ValueError(f"walkways: ids must be unique and not {DEFAULT_WALKWAY!r}, got {ids[1:]}")
        endpoints = [self.endpoints.front, self.endpoints.side, self.endpoints.scores]
        endpoints += [e for w in self.walkways for e in (w.front_endpoint, w.side_endpoint)]
        twice = sorted({e for e in endpoints if endpoints.count(e) > 1})
        if twice:
            raise ValueError(f"walkways: every camera needs its own endpoint; used twice: {', '.join(twice)}")
        patient = self.inference.patient
        for w in self.walkways:
            for name in ("walkway_front", "walkway_side"):
                region = getattr(w, name)
                if region is not None:
                    try:
                        replace(patient, **{name: region})  # the same check as inference.patient's
                    except ValueError as exc:
                        raise ValueError(f"walkway {w.id}: {exc}") from None
        frames = self.inference.window.frames
        if self.training.frames is None:  # T is written once: the model is trained on the live windows
            self.training = replace(self.training, frames=frames)
        elif self.training.frames != frames:
            raise ValueError(f"training.frames ({self.training.frames}) must equal inference.window.frames ({frames}): "
                             "the model is trained on the live pipeline's windows; leave training.frames out (null) "
                             "to follow inference.window.frames")

    def walkway_ids(self) -> list[str]:
        return [DEFAULT_WALKWAY] + [w.id for w in self.walkways]

    def for_walkway(self, walkway: str) -> DualgaitConfig:
        """This config as seen by one walkway's captures and pipeline: its cameras in ``capture.front/side``,
        its endpoints in ``endpoints.front/side``, its regions in ``inference.patient``; no other walkways."""
        if walkway == DEFAULT_WALKWAY:
            return replace(self, walkways=[])
        w = next((w for w in self.walkways if w.id == walkway), None)
        if w is None:
            raise KeyError(walkway)
        patient = self.inference.patient
        patient = replace(patient, walkway_front=w.walkway_front or patient.walkway_front,
                          walkway_side=w.walkway_side or patient.walkway_side)
        return replace(self, walkways=[],
                       capture=replace(self.capture, front=w.front, side=w.side),
                       endpoints=replace(self.endpoints, front=w.front_endpoint, side=w.side_endpoint),
                       inference=replace(self.inference, patient=patient))


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> DualgaitConfig:
    """Defaults <- YAML file <- ``section.key=value`` overrides; validated (ConfigError on mistakes)."""
    data: dict[str, Any] = load_yaml(path) if path is not None else {}
    for assignment in overrides:
        apply_override(data, assignment)
    return from_mapping(DualgaitConfig, data)


def dump_config(cfg: DualgaitConfig, path: str | Path) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(to_mapping(cfg), fh, sort_keys=False)
