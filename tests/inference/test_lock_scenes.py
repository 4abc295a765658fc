"""The patient lock on simulator scenes with the real detector (issue 20): a mirror reflection that moves before the
walker enters, and a walker whose head is above the picture. Each test records whom every window's side crops came
from (the scene's true boxes) and checks the windows' verdicts against it."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from bench.detector import StandInModel
from bench.robustness import who
from capture.synthetic import sample_subjects
from capture.synthetic.scenes import Box, SceneFrame, cut_off_scene, mirror_scene
from core.messages import Frame
from dualgait.config import DualgaitConfig
from inference.pipeline import InferencePipeline
from tests.detector_helpers import offline_config

FPS = 25.0
STEP_S = 0.125  # 8 samples per 1-s window


@pytest.fixture(scope="module")
def config(assets: Path) -> DualgaitConfig:
    return offline_config(assets)


@pytest.fixture(scope="module")
def network(yolo_network):
    return yolo_network


def _run(config: DualgaitConfig, network, frames: list[SceneFrame], **patient: Any) -> list[tuple[Any, str]]:
    """The pipeline over the scene; each window with whom its side samples were cropped from: one letter per
    sample, W (walker), R (reflection), - (none) or ? (someone else)."""
    from inference.detector import YoloDetector

    cfg = copy.deepcopy(config.inference)
    for key, value in patient.items():
        setattr(cfg.patient, key, value)
    pipe = InferencePipeline(cfg, detector=YoloDetector(cfg.detector, model=network), engine=StandInModel(),
                             clock_ns=lambda: 0)
    crops_from: dict[int, Box] = {}
    set_patient = pipe.patients.set_patient

    def spy(sample, view, person) -> None:
        if view == "side":
            crops_from[sample.index] = person.box_xyxy
        set_patient(sample, view, person)

    pipe.patients.set_patient = spy
    scores = []
    for i, images, _figures in frames:
        t_ns = round(i / FPS * 1e9)
        for view in ("front", "side"):
            scores += pipe.push(Frame(view, i, t_ns, t_ns, images[view], source_ts_ns=t_ns), received_ns=t_ns)

    def letter(k: int) -> str:
        figures = frames[min(len(frames) - 1, round(k * STEP_S * FPS))][2]["side"]
        return who(crops_from.get(k), figures)

    return [(s, "".join(letter(k) for k in range(8 * s.window, 8 * s.window + 8))) for s in scores]


@pytest.fixture(scope="module")
def mirror() -> list[SceneFrame]:
    """Simulator walker seed 11 (whose reflection the detector finds well) enters the side view at 1.5 s; the
    mirror shows a dimmed, smaller copy of the upper body from the start."""
    return list(mirror_scene(sample_subjects(1, seed=11)[0], seconds=6.0, enter_s=1.5))


def test_without_takeover_the_reflection_that_moved_first_keeps_the_lock(config, network, mirror) -> None:
    """The behaviour before issue 20 (takeover off): the reflection is locked first and a window is scored on it."""
    windows = _run(config, network, mirror, takeover_s=0.0)
    on_reflection = [who for score, who in windows if score.valid and "R" in who]
    assert on_reflection and all("W" not in who for _score, who in windows)


def test_the_walker_takes_the_lock_from_the_reflection_and_no_window_is_scored_on_it(config, network, mirror) -> None:
    windows = _run(config, network, mirror)
    assert all("R" not in who for score, who in windows if score.valid)
    contested = [score for score, _who in windows if score.reason_code == "lock_contested"]
    assert contested and "side: track" in contested[0].reason
    assert "the evidence of the locked track" in contested[0].reason
    assert windows[-1][0].valid and windows[-1][1] == "WWWWWWWW"  # after the takeover: the walker, scored
    assert any("R" in who for _score, who in windows)  # the reflection was locked first: the test shows a takeover


def test_an_excluded_mirror_is_never_locked(config, network, mirror) -> None:
    windows = _run(config, network, mirror, exclude_side=[[0.0, 0.2, 0.45, 0.6]])
    assert all("R" not in who for _score, who in windows)
    assert not any(score.reason_code == "lock_contested" for score, _who in windows)
    assert sum(score.valid for score, _who in windows) >= 3


def test_a_walker_with_the_head_above_the_picture_is_never_scored(config, network) -> None:
    frames = list(cut_off_scene(sample_subjects(1, seed=11)[0], seconds=4.0, cut_frac=0.3))
    windows = _run(config, network, frames)
    assert len(windows) == 4 and all(who == "WWWWWWWW" for _score, who in windows)  # the walker is found...
    assert [score.reason_code for score, _who in windows] == ["truncated_body"] * 4  # ...and refused
    assert windows[0][0].reason.startswith("patient cut off by the frame edge: side 8/8 samples (top 8)")
