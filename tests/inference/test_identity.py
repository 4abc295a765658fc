"""Identity continuity of the locked patient (inference.identity): the colour signature, the monitor, and the
pipeline on two simulated walkers crossing, with and without the tracker swapping their ids."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import cv2
import numpy as np
import pytest

from capture.synthetic import make_subject, render_frames
from capture.synthetic.body import Walker
from capture.synthetic.render import draw_shadow, draw_walker, layout_walk
from capture.synthetic.room import render_room
from capture.synthetic.subjects import SubjectSpec
from core.messages import Frame
from inference.config import InferenceConfig, PatientConfig
from inference.detector import Detection, PerViewDetector
from inference.identity import BINS, IdentityMonitor, signature, signature_distance
from inference.pipeline import InferencePipeline

Box = tuple[float, float, float, float]
FPS = 8.0  # one frame per sample: every frame is used, none rendered in vain
SIZE_PX = 240
SECONDS = 6.0
MEET_S = 2.5  # the walkers meet (side view) in window 2 (2.0 .. 2.875 s)
LIMIT = PatientConfig().identity_max_distance


def _patch(colours: list[tuple[int, int, int]], h_px: int = 80, w_px: int = 30) -> np.ndarray:
    """A "person": horizontal bands of the given BGR colours, on a grey background, (120, 60, 3) uint8."""
    image = np.full((120, 60, 3), 128, np.uint8)
    band = h_px // len(colours)
    for k, colour in enumerate(colours):
        image[20 + k * band:20 + (k + 1) * band, 15:15 + w_px] = colour
    return image


PERSON_BOX: Box = (15.0, 20.0, 45.0, 100.0)


# --------------------------------------------------------------------------------- signature and monitor


def test_the_signature_is_two_normalised_colour_histograms() -> None:
    sig = signature(_patch([(200, 40, 40), (40, 40, 200)]), PERSON_BOX)  # blue shirt, red trousers
    assert sig is not None and sig.shape == (2, BINS) and sig.dtype == np.float32
    assert np.allclose(sig.sum(axis=1), 1.0)
    # each band holds one colour (in the one or two bins nearest it): the bands share no bin
    assert ((sig > 0.01).sum(axis=1) <= 2).all() and np.minimum(sig[0], sig[1]).sum() == pytest.approx(0.0)
    assert signature(_patch([(0, 0, 0)]), (100.0, 20.0, 130.0, 100.0)) is None  # box outside the image


def test_the_distance_tells_shirt_and_trousers_apart() -> None:
    a = signature(_patch([(200, 40, 40), (40, 40, 200)]), PERSON_BOX)
    swapped = signature(_patch([(40, 40, 200), (200, 40, 40)]), PERSON_BOX)  # same colours, other places
    other = signature(_patch([(40, 200, 40), (30, 30, 30)]), PERSON_BOX)
    assert a is not None and swapped is not None and other is not None
    assert signature_distance(a, a) == pytest.approx(0.0, abs=1e-3)
    assert signature_distance(a, other) == pytest.approx(1.0, abs=1e-3)
    assert signature_distance(a, swapped) == pytest.approx(1.0, abs=1e-3)  # red shirt, blue trousers: not a
    assert signature_distance(a, other) == pytest.approx(signature_distance(other, a))


def test_the_monitor_reports_a_jump_and_starts_afresh() -> None:
    monitor = IdentityMonitor(LIMIT)
    same = _patch([(200, 40, 40), (40, 40, 200)])
    assert monitor.check(1, same, PERSON_BOX) is None  # the first sighting is the reference
    step = monitor.check(1, same, PERSON_BOX)
    assert step is not None and not step.jump and step.distance == pytest.approx(0.0, abs=1e-3)
    jump = monitor.check(1, _patch([(40, 200, 40), (30, 30, 30)]), PERSON_BOX)
    assert jump is not None and jump.jump and jump.track_id == 1 and jump.distance > 0.9
    assert monitor.track_id is None  # reset: the next sighting is a new reference
    assert monitor.check(1, same, PERSON_BOX) is None
    assert monitor.check(2, same, PERSON_BOX) is None  # another track: a new reference too


def test_the_monitor_follows_slow_change_but_not_a_slide_to_another_person() -> None:
    """Shirt colour drifting a little per sighting (light, a turn) is followed; a box sliding over to another
    person in a few steps is not absorbed into the reference."""
    monitor = IdentityMonitor(LIMIT)
    for k in range(40):  # blue shirt turning to violet, 3 grey levels a step
        check = monitor.check(1, _patch([(200, 40, 40 + 3 * k), (40, 40, 40)]), PERSON_BOX)
        assert check is None or not check.jump
    checks = []
    for share in (0.25, 0.5, 0.75, 1.0):  # another person's green shirt fills more of the box each step
        image = _patch([(200, 40, 157), (40, 40, 40)])
        image[20:int(20 + 80 * share), 15:45] = (40, 200, 40)
        checks.append(monitor.check(1, image, PERSON_BOX))
    assert any(c is not None and c.jump for c in checks)


def test_identity_config_is_checked() -> None:
    assert PatientConfig().identity_check is True and 0 < LIMIT < 1
    with pytest.raises(ValueError, match="identity_max_distance"):
        PatientConfig(identity_max_distance=0.0)
    with pytest.raises(ValueError, match="identity_max_distance"):
        PatientConfig(identity_max_distance=1.5)


@pytest.mark.parametrize("seed", [3, 11, 20])
def test_a_simulated_walker_keeps_its_identity_in_both_views(seed: int) -> None:
    """The same walker, seen at the detector's pace once locked (4 Hz), never trips the limit: approaching
    the front camera (growing), and crossing the side view (stride and arm swing change the box)."""
    spec = make_subject(f"walker{seed}", asd=seed % 2 == 0, trait_view="both", seed=seed)
    monitors = {"front": IdentityMonitor(LIMIT), "side": IdentityMonitor(LIMIT)}
    distances = []
    for _i, images, boxes in render_frames(spec, size_px=SIZE_PX, seconds=4.0, fps=4.0):
        for view, monitor in monitors.items():
            box = boxes[view]
            check = monitor.check(1, images[view], box) if box is not None else None
            if check is not None:
                distances.append(check.distance)
                assert not check.jump, f"{view}: distance {check.distance:.3f}"
    assert len(distances) >= 25 and max(distances) < LIMIT


def test_a_simulated_walker_who_turns_round_keeps_its_identity() -> None:
    """Walking towards the front camera, then turning and walking away: its back shows, its clothes stay."""
    spec = make_subject("turner", asd=False, trait_view=None, seed=7)
    layout = layout_walk(spec, size_px=SIZE_PX, seconds=4.0)
    cam = layout.cameras["front"]
    room = render_room(cam, spec.scene, view="front", walk_x=0.0, z_range=layout.z_range,
                       rng=np.random.default_rng(spec.render_seed))
    turn_s = 2.0
    where = layout.walker.pelvis_position(turn_s)
    back = Walker(dataclasses.replace(spec, yaw_deg=180.0), z_start=float(where[2]), x_start=float(where[0]))
    monitor = IdentityMonitor(LIMIT)
    distances = []
    for k in range(16):  # 4 Hz over 4 s
        t = k / 4.0
        walker, tw = (layout.walker, t) if t < turn_s else (back, t - turn_s)
        image = room.copy()
        box = draw_walker(image, cam, walker.parts(tw))
        check = monitor.check(1, image, box)
        if check is not None:
            distances.append(check.distance)
    assert len(distances) == 15 and max(distances) < LIMIT


# --------------------------------------------------------------------------------- two walkers crossing


@dataclasses.dataclass
class Crossing:
    frames: dict[str, list[Frame]]
    boxes: dict[int, dict[str, dict[str, Box]]]  # id(image) -> view -> walker ("a", "b") -> its box
    t_s: dict[int, float]  # id(image) -> time in the walk


def _render_crossing(a: SubjectSpec, b: SubjectSpec, *, lateral_m: float = 0.7) -> Crossing:
    """Walker ``a`` walks the walkway towards the front camera; ``b`` walks the other way, ``lateral_m`` further
    from the side camera (behind ``a`` in the side view), and they meet at MEET_S. ``b`` passes outside the
    front camera's field, so the front view shows ``a`` alone. Room, blur and sensor noise as the simulator's
    walks (no camera shake)."""
    layout = layout_walk(a, size_px=SIZE_PX, seconds=SECONDS)
    z_start = layout.z_range[0]
    # b starts where a will be at 2 * MEET_S, walking back at a's speed: they meet at MEET_S
    walker_b = Walker(dataclasses.replace(b, speed_mps=a.speed_mps, yaw_deg=180.0, scene=a.scene),
                      z_start=z_start + 2 * MEET_S * a.speed_mps, x_start=lateral_m)
    walkers = {"a": layout.walker, "b": walker_b}
    rng = np.random.default_rng(a.render_seed)
    rooms = {v: render_room(layout.cameras[v], a.scene, view=v, walk_x=0.0, z_range=layout.z_range, rng=rng)
             for v in ("front", "side")}
    out = Crossing({"front": [], "side": []}, {}, {})
    period_ns = round(1e9 / FPS)
    for i in range(round(SECONDS * FPS)):
        t = i / FPS
        for view in ("front", "side"):
            cam = layout.cameras[view]
            image = rooms[view].copy()
            here = ["a"] if view == "front" else ["b", "a"]  # far to near
            boxes = {}
            for name in here:
                walker = walkers[name]
                draw_shadow(image, cam, walker.pelvis_position(t), walker.F, walker.H)
                box = draw_walker(image, cam, walker.parts(t))
                if box is not None:
                    x0, y0, x1, y1 = max(0.0, box[0]), max(0.0, box[1]), min(SIZE_PX, box[2]), min(SIZE_PX, box[3])
                    if x1 - x0 > 2 and y1 - y0 > 2:  # in the picture
                        boxes[name] = (x0, y0, x1, y1)
            image = cv2.GaussianBlur(image, (0, 0), a.scene.blur_sigma_px)
            noise = rng.normal(0.0, a.scene.noise_sigma, image.shape).astype(np.float32)
            image = cv2.add(image, noise, dtype=cv2.CV_8U)
            capture_ns = 1_000_000_000 + i * period_ns
            out.frames[view].append(Frame(view, i, capture_ns, capture_ns + 5, image, source_ts_ns=i * period_ns))
            out.boxes[id(image)] = {view: boxes}
            out.t_s[id(image)] = t
    return out


def _covered(front: Box, behind: Box) -> float:
    """Share of ``behind``'s width that ``front`` covers."""
    overlap = max(0.0, min(front[2], behind[2]) - max(front[0], behind[0]))
    return overlap / max(1e-6, behind[2] - behind[0])


class CrossingTracker:
    """The side view's stand-in ByteTrack: ``a`` is track 1, ``b`` track 2; while ``a`` hides most of ``b``, only
    ``a`` is found. With ``swap``, the ids come back exchanged after that occlusion (``b`` is track 1)."""

    def __init__(self, crossing: Crossing, view: str, *, swap: bool) -> None:
        self.crossing, self.view, self.swap = crossing, view, swap
        self.swapped = False

    def track(self, image: np.ndarray) -> list[Detection]:
        boxes = self.crossing.boxes[id(image)][self.view]
        if "b" in boxes and _covered(boxes["a"], boxes["b"]) > 0.5:
            if self.swap:
                self.swapped = True  # the tracker loses b behind a, and on its way out gives it a's id
            return [Detection(boxes["a"], 0.9, 1)]
        ids = {"a": 2, "b": 1} if self.swapped else {"a": 1, "b": 2}
        return [Detection(box, 0.9, ids[name]) for name, box in boxes.items()]

    def reset(self) -> None:
        self.swapped = False


class FakeEngine:
    description = "fake"
    untrained = True
    synthetic = True
    views = ("front", "side")

    def predict(self, clips: dict[str, np.ndarray]) -> dict[str, float]:
        return {"p_asd": 0.5}


@pytest.fixture(scope="module")
def crossing() -> Crossing:
    # a: taller, in front in the side view (the lock's choice); b: dressed differently
    a = dataclasses.replace(make_subject("patient", asd=False, trait_view=None, seed=3), height_m=1.8)
    b = dataclasses.replace(make_subject("visitor", asd=False, trait_view=None, seed=1003), height_m=1.7)
    return _render_crossing(a, b)


def _run(crossing: Crossing, *, swap: bool, cfg: InferenceConfig | None = None) -> tuple[InferencePipeline, list]:
    trackers = {"front": CrossingTracker(crossing, "front", swap=False),
                "side": CrossingTracker(crossing, "side", swap=swap)}
    clock = iter(range(10**12, 10**13, 1_000_000))
    pipe = InferencePipeline(cfg or InferenceConfig(), detector=PerViewDetector(trackers), engine=FakeEngine(),
                             clock_ns=lambda: next(clock))
    scores = []
    for f, s in zip(crossing.frames["front"], crossing.frames["side"], strict=True):
        scores += pipe.push(f, received_ns=f.capture_mono_ns + 1_000_000)
        scores += pipe.push(s, received_ns=s.capture_mono_ns + 1_000_000)
    return pipe, scores


def test_walkers_crossing_without_a_swap_stay_valid(crossing: Crossing) -> None:
    pipe, scores = _run(crossing, swap=False)
    assert [s.window for s in scores] == [0, 1, 2, 3, 4, 5]
    assert [(s.valid, s.reason_code) for s in scores] == [(True, None)] * 6
    assert pipe.stats["identity_jumps_side"] == pipe.stats["identity_jumps_front"] == 0
    assert 0 < pipe.stats["identity_distance_max_side"] < LIMIT
    assert pipe.locks["side"].locked_id == 1 and pipe.locks["side"].stats["releases"] == 0


def test_an_id_swap_at_the_crossing_invalidates_its_window_and_the_lock_re_decides(crossing: Crossing) -> None:
    pipe, scores = _run(crossing, swap=True)
    assert [s.window for s in scores] == [0, 1, 2, 3, 4, 5]
    assert [s.valid for s in scores[:2]] == [True, True]  # before the crossing
    assert not scores[2].valid and scores[2].reason_code == "identity_changed"  # the window of the swap
    reason = scores[2].reason
    assert reason.startswith("identity changed: side track 1 at sample ") and f"(limit {LIMIT:g})" in reason
    assert float(reason.split("colour distance ")[1].split(" ")[0]) > LIMIT
    assert pipe.stats["identity_jumps_side"] == 1 and pipe.stats["identity_jumps_front"] == 0
    assert pipe.stats["invalid_identity_changed"] == 1
    # the lock re-decided: back on the patient, now under the tracker's id 2, and its windows are scored again
    assert pipe.locks["side"].locked_id == 2
    assert scores[-1].valid and scores[-1].reason_code is None
    end = pipe.end("test").stats
    assert end["patient_releases_side"] == 1 and end["patient_locks_side"] == 2


def test_without_the_identity_check_the_swap_goes_unnoticed(crossing: Crossing) -> None:
    """The issue itself: with identity_check off, the windows across the swap are scored (on two people)."""
    cfg = InferenceConfig(patient=PatientConfig(identity_check=False))
    pipe, scores = _run(crossing, swap=True, cfg=cfg)
    assert all(s.valid for s in scores) and pipe.stats["identity_jumps_side"] == 0
    assert pipe.locks["side"].locked_id == 1  # still "the patient": now the visitor


def _frames_of(crossing: Crossing) -> Iterator[tuple[float, dict[str, Box]]]:
    for frame in crossing.frames["side"]:
        yield crossing.t_s[id(frame.image)], crossing.boxes[id(frame.image)]["side"]


def test_the_crossing_is_where_the_test_expects_it(crossing: Crossing) -> None:
    """The scene itself: a in front of b in the side view and taller there; b hidden around MEET_S only."""
    hidden = [t for t, boxes in _frames_of(crossing) if "b" in boxes and _covered(boxes["a"], boxes["b"]) > 0.5]
    assert hidden and min(hidden) >= 2.0 and max(hidden) < 2.875  # inside window 2
    heights = [(boxes["a"][3] - boxes["a"][1], boxes["b"][3] - boxes["b"][1])
               for _t, boxes in _frames_of(crossing) if "b" in boxes]
    assert all(ha > hb for ha, hb in heights)
