"""``dualgait bench robustness``: the patient lock and the window checks on scenes that real rooms bring.

Each scene goes through the pipeline as configured (the real detector and tracker, the patient lock, the window
checks; a stand-in model, since the question is *whom* a window was scored on, not the score) as fast as the
machine allows, with load shedding off. The simulator scenes (:mod:`capture.synthetic.scenes`) know every
person's true box, so each sample's patient crop is attributed to a person: ``W`` the walker (the patient),
``R`` a mirror reflection, ``O`` another person, ``-`` none, ``?`` nobody known (real footage). Per scene:

- windows, valid, invalid by reason code;
- valid windows scored on someone other than the patient (must be 0);
- subject switches: within one walk, the person the crops came from changed (per view; must be 0);
- walks seen against walks expected (the patient leaving and coming back is two walks: the first must end);
- the locks' counters: locks, takeovers, releases, identity jumps.

Real footage: the shared pair (one walker, the baseline) and the PETS 2009 crowd (both views the same clip:
a crowd must give invalid windows with a reason, not a score of whoever is tallest).

Single-view scenes (one side camera, ``views = ("side",)``, the pipeline of ``dualgait score --side``): the shared
side view alone, the real side-view recordings of ``assets/videos/real`` (an outdoor walker, a runner on a treadmill
in a portrait phone video), a back view and the shared front view given as the side camera (both must be refused:
``no_side_stride``), the simulator's mirror scene seen by its side camera alone and the PETS crowd as one camera.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import copy
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.detector import iou

if TYPE_CHECKING:
    from capture.synthetic.scenes import SceneFrame
    from core.messages import Frame
    from dualgait.config import DualgaitConfig  # the app's whole config: a type only

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]
STEP_S = 0.125  # the pipeline's default sample step: 8 samples per 1-s window
VIEWS = ("front", "side")


def add_bench_robustness_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", required=True, help="JSON file (the markdown goes beside it, .md)")
    parser.add_argument("--scenes", help="comma-separated scene names (default: all; see --list)")
    parser.add_argument("--list", action="store_true", help="list the scenes and exit")
    parser.add_argument("--crowd-seconds", type=float, default=20.0, help="seconds of the PETS crowd clip")


@dataclass(frozen=True, slots=True)
class Scene:
    name: str
    what: str
    walks_expected: int | None  # None: not known (real footage)
    # a simulator scene: (index, {view: image}, {view: {person: true box}}) at ``fps``
    frames: Callable[[], Iterator[SceneFrame]] | None = None
    fps: float = 25.0
    # or a recorded front/side pair, decoded as ``dualgait score`` decodes it (its first ``max_s`` seconds); a
    # single-view scene has None for the view without a camera
    recording: tuple[str | None, str | None] | None = None
    max_s: float | None = None
    patient_config: dict[str, Any] | None = None  # inference.patient overrides for this scene
    views: tuple[str, ...] = VIEWS  # the cameras: both, or ("side",) for single-view mode


def who(box: Box | None, figures: dict[str, Box | None]) -> str:
    """The letter of the person whose true box ``box`` matches (IoU > 0.3): W walker, R reflection, O other."""
    if box is None:
        return "-"
    known = {name: true for name, true in figures.items() if true is not None}
    best = max(known.items(), key=lambda kv: iou(box, kv[1]), default=None)
    if best is None or iou(box, best[1]) <= 0.3:
        return "?"
    return {"walker": "W", "reflection": "R"}.get(best[0], "O")


def scenes(cfg: DualgaitConfig, *, crowd_seconds: float = 20.0) -> list[Scene]:
    """Every scene of the robustness table, in its order."""
    from capture.synthetic import sample_subjects
    from capture.synthetic.scenes import Figure, cut_off_scene, mirror_scene, people_scene

    walker, other = sample_subjects(2, seed=21)
    mirrored = sample_subjects(1, seed=11)[0]
    assets_videos = Path(cfg.capture.front).parent
    pets = str(assets_videos / "vtest_pets2009_480x360.avi")
    out = [
        Scene("shared pair", "the shared real pair: one person walking in place (baseline)", 1,
              recording=(cfg.capture.front, cfg.capture.side)),
        Scene("walker alone", "a simulator walker, nobody else (baseline)", 1,
              lambda: people_scene(walker, [], seconds=6.0)),
        Scene("mirror", "a mirror in the side view shows the walker's upper body (dimmed, flipped, 0.8x) from 0 s; "
                        "the walker enters at 1.5 s", 1, lambda: mirror_scene(mirrored, seconds=6.0, enter_s=1.5)),
        Scene("mirror excluded", "the same, the mirror excluded in the config", 1,
              lambda: mirror_scene(mirrored, seconds=6.0, enter_s=1.5),
              patient_config={"exclude_side": [[0.0, 0.2, 0.45, 0.6]]}),
        Scene("beside", "a second person walks beside the patient, 0.9 m to the side", 1,
              lambda: people_scene(walker, [Figure("other", other, dx_m=0.9)], seconds=6.0)),
        Scene("behind", "a second person walks 1.8 m behind the patient", 1,
              lambda: people_scene(walker, [Figure("other", other, dz_m=-1.8)], seconds=6.0)),
        Scene("crossing", "someone crosses the walkway in front of the patient from 1 s (across both views)", 1,
              lambda: people_scene(walker, [Figure("other", other, dx_m=-3.0, dz_m=3.5, yaw_deg=90.0, start_s=1.0)],
                                   seconds=6.0)),
        Scene("leaves and returns", "the patient walks out of the picture at 3 s and comes back at 7.5 s", 2,
              lambda: people_scene(walker, [], seconds=10.0, walker_visible_s=[(0.0, 3.0), (7.5, 10.0)])),
        Scene("cut off", "the side camera tilted: the top 30 % of the body above the picture", 1,
              lambda: cut_off_scene(mirrored, seconds=4.0, cut_frac=0.3)),
    ]
    if Path(pets).is_file():
        out.append(Scene("crowd (PETS 2009)", f"3-8 people walking (first {crowd_seconds:g} s, the clip as both views)",
                         None, recording=(pets, pets), max_s=crowd_seconds))
    side = ("side",)
    out += [
        Scene("side alone", "single-view mode: the shared pair's side view alone (one person walking in place)", 1,
              recording=(None, cfg.capture.side), views=side),
        Scene("mirror (side alone)", "single-view mode: the mirror scene's side camera alone", 1,
              lambda: mirror_scene(mirrored, seconds=6.0, enter_s=1.5), views=side),
        Scene("front view as side", "single-view mode: the shared front view given as the side camera (must be "
                                    "refused)", 1, recording=(None, cfg.capture.front), views=side),
    ]
    if Path(pets).is_file():
        out.append(Scene("crowd (PETS 2009, side alone)", f"single-view mode: the crowd clip as the side camera (first "
                                                          f"{crowd_seconds:g} s)", None, recording=(None, pets),
                         max_s=crowd_seconds, views=side))
    real = assets_videos / "real"
    for name, what in (("side_outdoor_sarwesh", "a real side view: a man walking outdoors, 1920x1080 at 59.7 fps"),
                       ("treadmill_side_portrait", "a real side view: a man running on a treadmill, portrait phone "
                                                   "video 720x1280"),
                       ("back_followcam_portrait", "a real back view given as the side camera: a hand-held camera "
                                                   "following a woman through a shop, bystanders (must be refused)")):
        if (real / f"{name}.mp4").is_file():
            out.append(Scene(f"{name} (side alone)", f"single-view mode: {what}", None,
                             recording=(None, str(real / f"{name}.mp4")), views=side))
    return out


def _frames(cfg: DualgaitConfig, scene: Scene, truth: dict[int, dict[str, dict[str, Box | None]]]
            ) -> Iterator[Frame]:
    """The scene's frames in capture-time order; a simulator scene's true boxes go to ``truth`` by frame index."""
    from core.messages import Frame
    from offline.score import decoded_pair

    if scene.recording is not None:
        with contextlib.closing(decoded_pair(*scene.recording, max_side_px=cfg.capture.max_side_px)) as frames:
            first_ns = None
            for frame in frames:
                first_ns = frame.capture_mono_ns if first_ns is None else first_ns  # a container may start late
                if scene.max_s is not None and frame.capture_mono_ns - first_ns >= scene.max_s * 1e9:
                    return
                yield frame
        return
    for i, images, figures in scene.frames():
        t_ns = round(i / scene.fps * 1e9)
        truth[i] = figures
        for view in scene.views:
            yield Frame(view, i, t_ns, t_ns, images[view], source_ts_ns=t_ns)


def run_scene(cfg: DualgaitConfig, network: Any, scene: Scene) -> dict[str, Any]:
    """One scene through the pipeline; its row of the table (and each window's verdict and crop letters)."""
    from bench.detector import StandInModel
    from inference.detector import YoloDetector
    from inference.pipeline import InferencePipeline

    icfg = copy.deepcopy(cfg.inference)
    icfg.overload.enabled = False  # as fast as possible: nothing shed
    for key, value in (scene.patient_config or {}).items():
        setattr(icfg.patient, key, value)
    pipe = InferencePipeline(icfg, detector=YoloDetector(icfg.detector, model=network),
                             engine=StandInModel("none (robustness bench)", views=scene.views), clock_ns=lambda: 0,
                             views=scene.views)
    boxes: dict[tuple[int, str], Box] = {}
    set_patient = pipe.patients.set_patient

    def record(sample: Any, view: str, person: Any) -> None:
        boxes[(sample.index, view)] = person.box_xyxy
        set_patient(sample, view, person)

    pipe.patients.set_patient = record
    truth: dict[int, dict[str, dict[str, Box | None]]] = {}  # simulator frame -> each view's true boxes
    scores = []
    for frame in _frames(cfg, scene, truth):
        scores += pipe.push(frame, received_ns=frame.capture_mono_ns)
    stats = pipe.end("end of scene").stats

    def letters(window: int, view: str) -> str:
        out = []
        for k in range(8 * window, 8 * window + 8):
            frame = min(max(truth, default=0), round(k * STEP_S * scene.fps))
            figures = truth.get(frame, {}).get(view, {})
            box = boxes.get((k, view))
            out.append(who(box, figures) if figures or box is None else "?")
        return "".join(out)

    windows = [{"window": s.window, "walk": s.walk, "valid": s.valid, "reason_code": s.reason_code,
                **{view: letters(s.window, view) for view in scene.views}} for s in scores]
    return {"scene": scene.name, "what": scene.what, "views": list(scene.views),
            **summarise(windows, stats, scene.walks_expected, views=scene.views)}


def _switches(windows: Sequence[dict[str, Any]], view: str) -> int:
    """Changes of the person the crops came from within one walk (gaps and unknowns skipped)."""
    switches, last = 0, None
    for w in windows:
        if w["walk"] is None:
            continue
        for letter in w[view]:
            if letter in "-?":
                continue
            key = (w["walk"], letter)
            if last is not None and last[0] == key[0] and last[1] != letter:
                switches += 1
            last = key
    return switches


def summarise(windows: Sequence[dict[str, Any]], stats: dict[str, Any], walks_expected: int | None, *,
              views: Sequence[str] = VIEWS) -> dict[str, Any]:
    """A scene's row from its windows (verdict and crop letters per view) and the pipeline's end counters; a view
    without a camera (single-view scenes) has no switches (None)."""
    reasons = collections.Counter(w["reason_code"] for w in windows if not w["valid"])
    wrong = [w["window"] for w in windows if w["valid"] and any(c in w[v] for v in views for c in "RO")]
    return {
        "windows": len(windows),
        "valid": sum(w["valid"] for w in windows),
        "invalid_by_reason": dict(sorted(reasons.items())),
        "valid_on_someone_else": len(wrong),
        "subject_switches": {v: _switches(windows, v) if v in views else None for v in VIEWS},
        "walks": stats.get("walks"),
        "walks_expected": walks_expected,
        # per view (a view without a camera: None)
        "locks": {key: {v: stats.get(f"patient_{key}_{v}") for v in VIEWS}
                  for key in ("locks", "takeovers", "releases")},
        "identity_jumps": {v: stats.get(f"identity_jumps_{v}") for v in VIEWS},
        "windows_detail": list(windows),
    }


def render(report: dict[str, Any]) -> str:
    lines = ["# Robustness: the patient lock and the window checks per scene", "",
             f"{report['machine']['cpu']}, {report['machine']['date']}; detector {report['detector']}; "
             "the model is a stand-in (whom a window was scored on is the question, not the score).", "",
             "| scene | windows | valid | invalid by reason | valid on someone else | subject switches (front / side) "
             "| walks (expected) |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for row in report["scenes"]:
        reasons = ", ".join(f"{n} {code}" for code, n in row["invalid_by_reason"].items()) or "-"
        sw = {v: "-" if n is None else n for v, n in row["subject_switches"].items()}  # -: no camera
        expected = "?" if row["walks_expected"] is None else row["walks_expected"]
        lines.append(f"| {row['scene']} | {row['windows']} | {row['valid']} | {reasons} | "
                     f"{row['valid_on_someone_else']} | {sw['front']} / {sw['side']} | {row['walks']} ({expected}) |")
    lines += ["", "Scenes:", ""] + [f"- **{row['scene']}**: {row['what']}" for row in report["scenes"]]
    return "\n".join(lines)


def run_bench_robustness(args: argparse.Namespace, cfg: DualgaitConfig) -> int:
    from bench.report import machine_info, recorded_pair, write_report
    from core.configtools import ConfigError
    from inference.detector import YoloModel

    recorded_pair(None, None, cfg)  # the shared pair and the detector exist
    all_scenes = scenes(cfg, crowd_seconds=args.crowd_seconds)
    if args.list:
        for scene in all_scenes:
            print(f"{scene.name}: {scene.what}")
        return 0
    chosen = all_scenes
    if args.scenes:
        names = [n.strip() for n in args.scenes.split(",")]
        unknown = sorted(set(names) - {s.name for s in all_scenes})
        if unknown:
            raise ConfigError(f"unknown scene(s) {', '.join(unknown)}; see dualgait bench robustness --list")
        chosen = [s for s in all_scenes if s.name in names]
    network = YoloModel(cfg.inference.detector)
    rows = []
    for scene in chosen:
        log.info("scene %s", scene.name)
        rows.append(run_scene(cfg, network, scene))
    report = {"machine": machine_info(), "detector": cfg.inference.detector.weights, "scenes": rows}
    write_report(args.output, report, render(report))
    return 0


__all__ = ["Scene", "add_bench_robustness_args", "render", "run_bench_robustness", "run_scene", "scenes", "summarise",
           "who"]
