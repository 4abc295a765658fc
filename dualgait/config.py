"""The whole dualgait configuration: one section per component (see configs/default.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from aggregator.config import AggregatorConfig
from capture.config import CaptureConfig
from core.configtools import apply_override, from_mapping, load_yaml, to_mapping
from core.messages import DEFAULT_WALKWAY, by_view, check_walkway_id
from core.security import SecurityConfig
from dualgait.supervisor import SupervisorConfig
from inference.config import InferenceConfig
from inference.variants import default_variant, variant_views
from training.config import TrainingConfig


@dataclass(slots=True)
class EndpointsConfig:
    """ZeroMQ endpoints. Capture binds ``front``/``side``; inference binds ``scores``.

    ``scores`` may be a list (one aggregator, many inference hosts; docs/aggregator.md): the aggregator subscribes
    to every entry, an inference process started with this config binds the first (:attr:`scores_bind`).
    Loopback or ipc by default: patient video must not leave the host unencrypted.
    """

    front: str = "tcp://127.0.0.1:5701"
    side: str = "tcp://127.0.0.1:5702"
    scores: str | list[str] = "tcp://127.0.0.1:5703"

    def __post_init__(self) -> None:
        if isinstance(self.scores, list | tuple):
            if not self.scores:
                raise ValueError("scores is an empty list: give one endpoint or a list of them")
            twice = sorted({e for e in self.scores if list(self.scores).count(e) > 1})
            if twice:
                raise ValueError(f"scores lists {', '.join(twice)} twice")
            self.scores = list(self.scores)

    def view(self, view: str) -> str:
        return self.front if view == "front" else self.side

    @property
    def scores_list(self) -> list[str]:
        """Every scores endpoint (what the aggregator subscribes to)."""
        return [self.scores] if isinstance(self.scores, str) else list(self.scores)

    @property
    def scores_bind(self) -> str:
        """The scores endpoint an inference process binds: ``scores``, or its first entry when a list."""
        return self.scores_list[0]


@dataclass(slots=True)
class WalkwayConfig:
    """One more walkway (front/side camera pair) served by the same inference process (docs/inference.md).

    The pair of ``capture`` and ``endpoints`` is walkway ``walkway_id`` (``main``); each entry of ``walkways`` adds
    one, with its own cameras and endpoints. Everything else (model, detector, windows, capture settings) is shared.
    """

    id: str
    front: str | None  # capture source of its front camera (as capture.front); null: no front camera
    side: str | None
    front_endpoint: str  # where its front capture binds (as endpoints.front)
    side_endpoint: str
    # its patient walkway regions (as inference.patient.walkway_front/_side); null: those of inference.patient
    walkway_front: list[float] | None = None
    walkway_side: list[float] | None = None

    def __post_init__(self) -> None:
        check_walkway_id(self.id)


@dataclass(slots=True)
class DualgaitConfig:
    endpoints: EndpointsConfig = field(default_factory=EndpointsConfig)
    supervisor: SupervisorConfig = field(default_factory=SupervisorConfig)
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    aggregator: AggregatorConfig = field(default_factory=AggregatorConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    security: SecurityConfig = field(default_factory=SecurityConfig)
    # id of the walkway of capture/endpoints (the others: walkways[].id); unique across the inference hosts that
    # feed one aggregator (docs/aggregator.md, "Many inference hosts")
    walkway_id: str = DEFAULT_WALKWAY
    walkways: list[WalkwayConfig] = field(default_factory=list)

    def __post_init__(self) -> None:
        try:
            check_walkway_id(self.walkway_id)
        except ValueError as exc:
            raise ValueError(f"walkway_id: {exc}") from None
        if any(w.id == self.walkway_id for w in self.walkways):
            raise ValueError(f"walkways: walkway id {self.walkway_id!r} is the pair in capture/endpoints "
                             "(walkway_id); choose another")
        ids = self.walkway_ids()
        if len(set(ids)) != len(ids):
            raise ValueError(f"walkways: ids must be unique and not {self.walkway_id!r}, got {ids[1:]}")
        for name in self.security.server_keys:
            index = name.partition(".")[2]
            if index and int(index) >= len(self.endpoints.scores_list):
                raise ValueError(f"security.server_keys.{name}: endpoints.scores has "
                                 f"{len(self.endpoints.scores_list)} endpoint(s) (scores.0 is the first)")
        endpoints = [self.endpoints.front, self.endpoints.side, *self.endpoints.scores_list]
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
        views = self.capture.views
        for w in self.walkways:
            theirs = tuple(by_view(w.front, w.side))
            if theirs != views:
                raise ValueError(f"walkway {w.id} has the {' + '.join(theirs) or 'no'} camera(s) but walkway "
                                 f"{self.walkway_id} has {' + '.join(views)}: every walkway of one inference process "
                                 "shares its model, so all need the same views")
        variant = self.inference.model.variant
        if variant is not None and variant_views(variant) != views:
            raise ValueError(f"inference.model.variant {variant} takes the {' + '.join(variant_views(variant))} "
                             f"view(s) but the cameras are {' + '.join(views)} (capture.front/side): "
                             f"use {default_variant(views) if len(views) == 1 else 'a fusion variant'}, or null")
        frames = self.inference.window.frames
        if self.training.frames is None:  # T is written once: the model is trained on the live windows
            self.training = replace(self.training, frames=frames)
        elif self.training.frames != frames:
            raise ValueError(f"training.frames ({self.training.frames}) must equal inference.window.frames ({frames}): "
                             "the model is trained on the live pipeline's windows; leave training.frames out (null) "
                             "to follow inference.window.frames")

    @property
    def views(self) -> tuple[str, ...]:
        """The cameras of every walkway: ``("front", "side")``, or one view (single-view mode)."""
        return self.capture.views

    def walkway_ids(self) -> list[str]:
        return [self.walkway_id] + [w.id for w in self.walkways]

    def for_walkway(self, walkway: str) -> DualgaitConfig:
        """This config as seen by one walkway's captures and pipeline: its cameras in ``capture.front/side``,
        its endpoints in ``endpoints.front/side``, its regions in ``inference.patient``; no other walkways."""
        if walkway == self.walkway_id:
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
