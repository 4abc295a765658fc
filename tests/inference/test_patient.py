"""Patient lock per view and the walk monitor across views: rules from the config, with synthetic people."""

from __future__ import annotations

import numpy as np
import pytest

from inference.config import PatientConfig
from inference.detector import Detection
from inference.patient import LockUpdate, PatientLock, WalkMonitor, cut_off, thumbnail

STEP_NS = 125_000_000  # 8 Hz samples
H, W = 480, 640


def _scene(k: int, boxes: dict[int, tuple[float, float, float, float]], moving: set[int]) -> np.ndarray:
    """A grey frame with each person drawn as a textured box; the texture of a moving person changes."""
    image = np.full((H, W, 3), 90, np.uint8)
    for tid, (x0, y0, x1, y1) in boxes.items():
        rng = np.random.default_rng(1000 * tid + (k if tid in moving else 0))
        patch = rng.integers(0, 256, (int(y1) - int(y0), int(x1) - int(x0), 3), dtype=np.uint8)
        image[int(y0):int(y1), int(x0):int(x1)] = patch
    return image


def _people(boxes: dict[int, tuple[float, float, float, float]]) -> list[Detection]:
    return [Detection(box, 0.9, tid) for tid, box in boxes.items()]


def _feed(lock: PatientLock, samples: int, boxes_at, moving: set[int], start: int = 0) -> list[LockUpdate]:
    out = []
    for k in range(start, start + samples):
        boxes = boxes_at(k)
        out.append(lock.update(k * STEP_NS, _people(boxes), _scene(k, boxes, moving)))
    return out


WALKER = (100.0, 100.0, 180.0, 400.0)  # 300 px high: 0.62 of the frame
STAFF = (400.0, 60.0, 500.0, 440.0)  # taller than the walker, standing still


def test_thumbnail_is_normalised_and_none_outside_the_image() -> None:
    image = _scene(0, {1: WALKER}, set())
    thumb = thumbnail(image, WALKER)
    assert thumb.shape == (32, 16) and abs(float(thumb.mean())) < 1e-4
    assert thumbnail(image, (700.0, 10.0, 800.0, 50.0)) is None


def test_a_still_person_is_not_locked_and_a_walking_one_is() -> None:
    """Staff stand still (and are taller); the walker moves: the lock goes to the walker once its motion shows."""
    lock = PatientLock(PatientConfig(), walkway=(0.0, 0.0, 1.0, 1.0))
    updates = _feed(lock, 12, lambda k: {1: WALKER, 2: STAFF}, moving={1})
    acquired = [k for k, u in enumerate(updates) if u.acquired]
    assert len(acquired) == 1 and 4 <= acquired[0] <= 6  # after ~0.53 s (0.7 x the 0.75 s motion window)
    assert lock.locked_id == 1 and updates[-1].patient.track_id == 1
    assert lock.moving(2) is False and lock.moving(1) is True


def test_without_the_motion_rule_the_tallest_eligible_person_is_locked_at_once() -> None:
    lock = PatientLock(PatientConfig(require_motion=False), walkway=(0.0, 0.0, 1.0, 1.0))
    first = _feed(lock, 1, lambda k: {1: WALKER, 2: STAFF}, moving={1})[0]
    assert first.acquired and first.patient.track_id == 2


def test_a_second_person_never_takes_over_a_lock() -> None:
    """Once the walker is locked, a taller moving person (staff walking in) is ignored while the walker is seen."""
    lock = PatientLock(PatientConfig(), walkway=(0.0, 0.0, 1.0, 1.0))
    _feed(lock, 8, lambda k: {1: WALKER}, moving={1})
    assert lock.locked_id == 1
    updates = _feed(lock, 10, lambda k: {1: WALKER, 2: STAFF}, moving={1, 2}, start=8)
    assert all(u.patient.track_id == 1 and not u.acquired for u in updates)
    assert lock.stats["ignored_people"] >= 10


@pytest.mark.parametrize(("box", "why"), [
    ((300.0, 400.0, 330.0, 460.0), "too small: 60 px is 0.125 of the frame, limit 0.2"),
    ((100.0, 100.0, 180.0, 400.0), "feet at x 0.22, walkway starts at 0.5"),
])
def test_people_outside_the_rules_are_not_eligible(box, why) -> None:
    cfg = PatientConfig(min_height_frac=0.2, walkway_front=[0.5, 0.0, 1.0, 1.0])
    lock = PatientLock(cfg, walkway=cfg.walkway("front"))
    assert not lock.eligible(Detection(box, 0.9, 1), W, H), why
    _feed(lock, 12, lambda k: {1: box}, moving={1})
    assert lock.locked_id is None


def test_a_lost_lock_is_kept_through_a_short_gap_and_released_after_lost_after_s() -> None:
    lock = PatientLock(PatientConfig(lost_after_s=1.0), walkway=(0.0, 0.0, 1.0, 1.0))
    _feed(lock, 8, lambda k: {1: WALKER}, moving={1})
    gap = _feed(lock, 9, lambda k: {}, moving=set(), start=8)  # 1.125 s unseen
    assert all(u.patient is None for u in gap)
    assert [u.released for u in gap].index(True) == 7  # last seen at sample 7; released at 15, 1.0 s later
    assert lock.locked_id is None and lock.stats["releases"] == 1


def _update(patient_id: int | None) -> LockUpdate:
    patient = Detection(WALKER, 0.9, patient_id) if patient_id is not None else None
    return LockUpdate(patient=patient, people=int(patient is not None))


def test_walk_starts_with_the_first_lock_and_ends_after_the_gap() -> None:
    walks = WalkMonitor(PatientConfig(walk_gap_s=1.0), ("front", "side"))
    assert walks.update(0, {"front": _update(None), "side": _update(None)}) is None and walks.walk == -1
    assert walks.update(STEP_NS, {"front": _update(1), "side": _update(None)}) == "started"
    assert walks.walk == 0 and walks.active
    events = [walks.update(k * STEP_NS, {"front": _update(None), "side": _update(None)}) for k in range(2, 12)]
    assert events.index("ended") == 7  # 9 samples after the last sighting: 1.0 s
    assert not walks.active
    assert walks.update(20 * STEP_NS, {"front": _update(3), "side": _update(3)}) == "started" and walks.walk == 1


def test_views_that_lock_far_apart_disagree() -> None:
    walks = WalkMonitor(PatientConfig(max_start_offset_s=3.0), ("front", "side"))
    walks.update(0, {"front": _update(1), "side": _update(None)})
    walks.update(4_000_000_000, {"front": _update(1), "side": _update(2)})
    reason = walks.disagreement({"front": 1.0, "side": 1.0})
    assert reason is not None and "4.0 s apart" in reason


def test_a_walking_patient_in_one_view_and_a_still_one_in_the_other_disagree() -> None:
    walks = WalkMonitor(PatientConfig(), ("front", "side"))  # moving >= 0.3/s, still < 0.15/s
    walks.update(0, {"front": _update(1), "side": _update(1)})
    assert walks.disagreement({"front": 1.0, "side": 0.9}) is None
    assert walks.disagreement({"front": 0.0, "side": 0.1}) is None  # both still
    assert walks.disagreement({"front": 1.2, "side": 0.27}) is None  # a slow walker seen head-on: in the band
    reason = walks.disagreement({"front": 1.2, "side": 0.05})
    assert reason == ("views disagree: patient front moving (1.20/s), side still (0.05/s) "
                      "(moving >= 0.3/s, still < 0.15/s)")
    assert walks.disagreement({"front": 1.2, "side": None}) is None  # not known yet


def test_config_rejects_bad_regions_and_values() -> None:
    with pytest.raises(ValueError, match="walkway_side"):
        PatientConfig(walkway_side=[0.5, 0.0, 0.4, 1.0])
    with pytest.raises(ValueError, match="walk_gap_s"):
        PatientConfig(walk_gap_s=0)


# --------------------------------------------------------------------------- evidence, takeover, exclusion, cut-off

REFLECTION = (40.0, 120.0, 90.0, 260.0)  # 140 px high (0.29 of the frame): a small mirror image, moving
PATIENT = (300.0, 40.0, 400.0, 440.0)  # 400 px high (0.83): the full-body walker entering later


def test_a_better_candidate_takes_an_early_lock_and_the_update_says_from_whom() -> None:
    """The reflection moves first and is locked; the walker (2.9x its evidence) enters 1 s later and takes the
    lock after its motion shows and it has beaten the lock in takeover_samples (3) samples running."""
    lock = PatientLock(PatientConfig(), walkway=(0.0, 0.0, 1.0, 1.0))
    first = _feed(lock, 8, lambda k: {7: REFLECTION}, moving={7})
    assert lock.locked_id == 7 and sum(u.acquired for u in first) == 1
    later = _feed(lock, 12, lambda k: {7: REFLECTION, 1: PATIENT}, moving={1, 7}, start=8)
    switch = [k for k, u in enumerate(later) if u.taken_over_from is not None]
    # the walker's motion is known once its history spans 0.53 s (its 6th sample), then 3 samples running: the 8th
    assert switch == [7] and later[7].taken_over_from == 7 and later[7].acquired
    assert lock.locked_id == 1 and all(u.patient.track_id == 1 for u in later[7:])
    assert all(u.patient.track_id == 7 for u in later[:7])
    assert lock.stats["takeovers"] == 1


def test_after_takeover_s_the_lock_is_kept_whoever_comes() -> None:
    lock = PatientLock(PatientConfig(takeover_s=1.0), walkway=(0.0, 0.0, 1.0, 1.0))
    _feed(lock, 16, lambda k: {7: REFLECTION}, moving={7})  # locked at ~0.6 s: 1.4 s old when the walker comes
    later = _feed(lock, 16, lambda k: {7: REFLECTION, 1: PATIENT}, moving={1, 7}, start=16)
    assert lock.locked_id == 7 and not any(u.taken_over_from for u in later)
    assert lock.stats["takeovers"] == 0


def test_a_candidate_only_slightly_better_does_not_take_over() -> None:
    """Below takeover_ratio (1.3) the first lock stays: two similar people do not swap the lock back and forth."""
    lock = PatientLock(PatientConfig(), walkway=(0.0, 0.0, 1.0, 1.0))
    _feed(lock, 6, lambda k: {1: WALKER}, moving={1})
    taller = (400.0, 70.0, 480.0, 430.0)  # 360 px against the walker's 300: 1.2x
    updates = _feed(lock, 16, lambda k: {1: WALKER, 2: taller}, moving={1, 2}, start=6)
    assert lock.locked_id == 1 and not any(u.taken_over_from for u in updates)


def test_nobody_in_an_excluded_region_is_locked() -> None:
    """A mirror on the wall excluded in the config: the reflection is never locked, the walker is."""
    cfg = PatientConfig(exclude_front=[[0.0, 0.15, 0.2, 0.6]])
    lock = PatientLock(cfg, walkway=cfg.walkway("front"), exclude=cfg.excluded("front"))
    assert lock.excluded(Detection(REFLECTION, 0.9, 7), W, H) and not lock.excluded(Detection(PATIENT, 0.9, 1), W, H)
    updates = _feed(lock, 10, lambda k: {7: REFLECTION}, moving={7})
    assert lock.locked_id is None and not any(u.acquired for u in updates)
    _feed(lock, 8, lambda k: {7: REFLECTION, 1: PATIENT}, moving={1, 7}, start=10)
    assert lock.locked_id == 1 and lock.stats["excluded_people"] == 18


@pytest.mark.parametrize(("box", "edge"), [
    ((200.0, 0.0, 300.0, 400.0), "top"),  # head above the frame
    ((0.0, 100.0, 80.0, 400.0), "left"),  # walking in from the left
    ((580.0, 100.0, 640.0, 400.0), "right"),
    ((200.0, 250.0, 420.0, 480.0), "bottom"),  # 230 high, 220 wide at the bottom edge: legs cut off
    ((200.0, 100.0, 300.0, 480.0), None),  # feet touching the bottom edge, whole body: not cut off
    ((200.0, 40.0, 300.0, 440.0), None),
])
def test_cut_off_names_the_edge_that_cuts_the_body(box, edge) -> None:
    assert cut_off(box, W, H, margin_frac=0.01, min_body_aspect=1.3) == edge


def test_a_cut_off_person_has_half_the_evidence() -> None:
    lock = PatientLock(PatientConfig(), walkway=(0.0, 0.0, 1.0, 1.0))
    whole, cut = Detection((200.0, 40.0, 300.0, 440.0), 0.9, 1), Detection((200.0, 0.0, 300.0, 400.0), 0.9, 2)
    assert lock.evidence(whole, W, H) == pytest.approx(400 / 480)
    assert lock.evidence(cut, W, H) == pytest.approx(0.5 * 400 / 480)


def test_config_rejects_bad_exclusion_regions_and_takeover_values() -> None:
    with pytest.raises(ValueError, match="exclude_side region"):
        PatientConfig(exclude_side=[[0.5, 0.0, 0.4, 1.0]])
    with pytest.raises(ValueError, match="takeover_ratio"):
        PatientConfig(takeover_ratio=0.9)
    with pytest.raises(ValueError, match="max_truncated_frac"):
        PatientConfig(max_truncated_frac=1.5)


def test_a_young_lock_is_contested_from_the_moment_a_better_candidate_appears_until_it_wins() -> None:
    """The walker's motion is not known in its first samples, but it is not known to stand still either: the
    samples are contested from its first sighting; the takeover sample is the winner's and not contested."""
    lock = PatientLock(PatientConfig(), walkway=(0.0, 0.0, 1.0, 1.0))
    _feed(lock, 8, lambda k: {7: REFLECTION}, moving={7})
    later = _feed(lock, 10, lambda k: {7: REFLECTION, 1: PATIENT}, moving={1, 7}, start=8)
    assert [u.contested is not None for u in later] == [True] * 7 + [False] * 3
    assert later[0].contested == "track 1 has 2.9x the evidence of the locked track 7, locked 0.4 s ago"


def test_a_standing_bystander_does_not_contest_the_lock() -> None:
    lock = PatientLock(PatientConfig(), walkway=(0.0, 0.0, 1.0, 1.0))
    _feed(lock, 8, lambda k: {7: REFLECTION}, moving={7})
    later = _feed(lock, 10, lambda k: {7: REFLECTION, 1: PATIENT}, moving={7}, start=8)
    assert [u.contested is not None for u in later] == [True] * 5 + [False] * 5  # until it is known to stand still
    assert lock.locked_id == 7


def test_affinity_picks_among_similar_candidates_the_one_like_the_other_views_patient() -> None:
    """Two people of about the same size (within takeover_ratio): the lock goes to the one the affinity (colour
    distance to the other view's patient) prefers, not to the slightly taller one."""
    lock = PatientLock(PatientConfig(), walkway=(0.0, 0.0, 1.0, 1.0))
    taller = (400.0, 70.0, 480.0, 430.0)  # 360 px against the walker's 300
    boxes = {1: WALKER, 2: taller}
    for k in range(6):
        update = lock.update(k * STEP_NS, _people(boxes), _scene(k, boxes, {1, 2}),
                             affinity=lambda d: 0.1 if d.track_id == 1 else 0.6)
    assert lock.locked_id == 1 and update.eligible == 2
    plain = PatientLock(PatientConfig(), walkway=(0.0, 0.0, 1.0, 1.0))
    _feed(plain, 6, lambda k: boxes, moving={1, 2})
    assert plain.locked_id == 2  # by evidence alone: the taller one
