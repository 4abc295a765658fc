"""Synthetic subjects: who walks, with which posture traits, and how the scene around them looks.

Every subject draws every posture parameter. A subject without a trait draws it from the *natural*
range (what healthy walkers show: a little forward lean, a little sway); a subject with the trait draws
it from the *trait* range. ASD subjects have one or more traits, non-ASD subjects none (subcategory
``normal``). Walking speed, cadence, height, build, clothes and scene are drawn from the same
distributions for both labels, so they carry no label information.

Which camera sees a trait best:

=============  ======  =================================================================
trait          view    what it is
=============  ======  =================================================================
trunk_flexion  side    forward lean of the trunk (stooped posture), knees bend to compensate
dropped_head   side    neck flexed, head hanging forward (DHS-like)
lateral_sway   front   trunk rocks left/right with each step, pelvis shifts sideways
lateral_tilt   front   trunk leans to one side all the time (coronal imbalance)
limp           both    one leg takes shorter, quicker steps; trunk lurches over it (HipOA-like)
=============  ======  =================================================================

``trait_view`` of an ASD subject says where its traits are meant to be seen: ``front`` (only front-view
traits), ``side`` (only side-view traits) or ``both`` (a trait of each view, or a limp). A 3D posture
leaks a little into the other view, as in real life (a 30-degree stoop also shortens the trunk seen from
the front), but a front-only subject's side-view parameters are drawn exactly like a healthy subject's,
and vice versa. That is what makes the front-only / side-only mix a test of view fusion.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from typing import Literal

import numpy as np

TraitView = Literal["front", "side", "both"]
TRAIT_VIEWS: tuple[TraitView, ...] = ("front", "side", "both")

# trait -> (view, unit, natural range, trait range); magnitudes, a side/sign is drawn separately
TRAITS: dict[str, tuple[str, str, tuple[float, float], tuple[float, float]]] = {
    "trunk_flexion": ("side", "deg", (0.0, 6.0), (18.0, 40.0)),
    "dropped_head": ("side", "deg", (0.0, 10.0), (35.0, 65.0)),
    "lateral_sway": ("front", "deg", (1.0, 3.0), (7.0, 14.0)),
    "lateral_tilt": ("front", "deg", (0.0, 2.0), (7.0, 15.0)),
    "limp": ("both", "", (0.0, 0.06), (0.4, 0.8)),
}
FRONT_TRAITS = tuple(t for t, spec in TRAITS.items() if spec[0] == "front")
SIDE_TRAITS = tuple(t for t, spec in TRAITS.items() if spec[0] == "side")

BGR = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class Appearance:
    skin: BGR
    hair: BGR
    shirt: BGR
    trousers: BGR
    shoes: BGR
    long_sleeves: bool
    hair_style: Literal["short", "long", "bald"] = "short"


@dataclass(frozen=True, slots=True)
class Scene:
    wall: BGR
    floor: BGR
    ceiling: BGR
    floor_pattern: Literal["plain", "tiles", "planks"]
    wall_pattern: Literal["plain", "panels", "stripes"]
    tile_m: float
    corridor_half_width_m: float
    back_wall_m: float  # behind the start of the walk (front view)
    side_wall_m: float  # behind the walkway, seen by the side camera
    ceiling_m: float
    front_cam_height_m: float
    side_cam_height_m: float
    end_distance_m: float  # front camera to the walker at the end of the walk
    front_fill: float  # share of the front image height the walker fills at the end of the walk
    focal_side: float
    noise_sigma: float  # sensor noise, grey levels
    blur_sigma_px: float
    jitter_px: float  # camera shake, standard deviation in pixels
    vignette: float


@dataclass(frozen=True, slots=True)
class SubjectSpec:
    """Everything needed to render one walk; ``render_seed`` drives noise and camera shake."""

    participant_id: str
    label: Literal["ASD", "non-ASD"]
    subcategory: str
    trait_view: Literal["front", "side", "both", "none"]
    traits: tuple[str, ...]  # trait names present (main first); empty for non-ASD
    # posture (degrees, limp 0..1)
    trunk_flexion_deg: float
    dropped_head_deg: float
    lateral_sway_deg: float
    lateral_tilt_deg: float  # signed: + leans to the walker's left
    limp: float
    limp_left: bool  # which leg limps
    # body and gait
    height_m: float
    build: float  # width factor, 1 = average
    speed_mps: float
    cadence_spm: float  # steps per minute
    arm_swing_deg: float
    yaw_deg: float  # heading off the walkway axis
    phase0: float  # gait phase at t=0, 0..1
    appearance: Appearance
    scene: Scene
    render_seed: int

    @property
    def is_asd(self) -> bool:
        return self.label == "ASD"

    def trait_value(self, trait: str) -> float:
        """Magnitude of a posture parameter by trait name (the sign of lateral tilt dropped)."""
        return {"trunk_flexion": self.trunk_flexion_deg, "dropped_head": self.dropped_head_deg,
                "lateral_sway": self.lateral_sway_deg, "lateral_tilt": abs(self.lateral_tilt_deg),
                "limp": self.limp}[trait]

    def trait_strings(self) -> tuple[str, ...]:
        """The manifest's ``traits``: ``name=value`` for each trait present (nothing for non-ASD)."""
        out = []
        for trait in self.traits:
            unit = TRAITS[trait][1]
            value = self.trait_value(trait)
            text = f"{trait}={value:.1f}{unit}" if unit else f"{trait}={value:.2f}"
            if trait == "lateral_tilt":
                text += ",left" if self.lateral_tilt_deg > 0 else ",right"
            if trait == "limp":
                text += ",left" if self.limp_left else ",right"
            out.append(text)
        return tuple(out)


def _uniform(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    return float(rng.uniform(*lo_hi))


def _colour(rng: np.random.Generator, *, sat: tuple[float, float], val: tuple[float, float],
            hue: tuple[float, float] = (0.0, 1.0)) -> BGR:
    r, g, b = colorsys.hsv_to_rgb(_uniform(rng, hue), _uniform(rng, sat), _uniform(rng, val))
    return int(b * 255), int(g * 255), int(r * 255)


def _luma(bgr: BGR) -> float:
    b, g, r = bgr
    return 0.114 * b + 0.587 * g + 0.299 * r


def _skin(rng: np.random.Generator) -> BGR:
    # from dark brown to light: a blend along a measured-ish skin tone line (BGR)
    k = float(rng.random())
    dark, light = np.array([45, 70, 110]), np.array([175, 200, 235])
    tone = dark + k * (light - dark) + rng.normal(0, 6, 3)
    return tuple(int(v) for v in np.clip(tone, 0, 255))  # type: ignore[return-value]


def _appearance(rng: np.random.Generator, scene: Scene) -> Appearance:
    wall, floor = _luma(scene.wall), _luma(scene.floor)
    # clothes that stand out from the room; a person the detector cannot see is no use to anyone
    for _ in range(50):
        shirt = _colour(rng, sat=(0.1, 0.85), val=(0.15, 0.95))
        trousers = _colour(rng, sat=(0.05, 0.6), val=(0.1, 0.7))
        if (abs(_luma(shirt) - wall) > 45 and abs(_luma(trousers) - wall) > 35
                and abs(_luma(trousers) - floor) > 35):
            break
    skin = _skin(rng)
    hair = _colour(rng, sat=(0.25, 0.75), val=(0.06, 0.6), hue=(0.03, 0.12))  # black, browns, auburn, blond
    if rng.random() < 0.15:  # grey hair
        g = int(rng.uniform(150, 215))
        hair = (g, g, g)
    shoes = _colour(rng, sat=(0.0, 0.4), val=(0.05, 0.5))
    return Appearance(skin=skin, hair=hair, shirt=shirt, trousers=trousers, shoes=shoes,
                      long_sleeves=bool(rng.random() < 0.5),
                      hair_style=("short", "long", "bald")[int(rng.choice(3, p=[0.6, 0.35, 0.05]))])


def _scene(rng: np.random.Generator) -> Scene:
    wall = _colour(rng, sat=(0.0, 0.35), val=(0.45, 0.95))
    floor = _colour(rng, sat=(0.0, 0.45), val=(0.25, 0.8))
    ceiling = _colour(rng, sat=(0.0, 0.1), val=(0.75, 0.98))
    return Scene(
        wall=wall, floor=floor, ceiling=ceiling,
        floor_pattern=("plain", "tiles", "planks")[int(rng.integers(3))],
        wall_pattern=("plain", "panels", "stripes")[int(rng.integers(3))],
        tile_m=_uniform(rng, (0.3, 0.7)),
        corridor_half_width_m=_uniform(rng, (1.4, 2.6)),
        back_wall_m=_uniform(rng, (1.5, 5.0)),
        side_wall_m=_uniform(rng, (1.2, 3.0)),
        ceiling_m=_uniform(rng, (2.6, 3.3)),
        front_cam_height_m=_uniform(rng, (0.9, 1.3)),
        side_cam_height_m=_uniform(rng, (0.85, 1.25)),
        end_distance_m=_uniform(rng, (3.6, 4.4)),
        front_fill=_uniform(rng, (0.66, 0.78)),
        focal_side=_uniform(rng, (0.7, 0.85)),
        noise_sigma=_uniform(rng, (1.0, 5.0)),
        blur_sigma_px=_uniform(rng, (0.4, 0.9)),
        jitter_px=_uniform(rng, (0.1, 1.0)),
        vignette=_uniform(rng, (0.0, 0.25)),
    )


def _choose_traits(rng: np.random.Generator, view: TraitView) -> tuple[str, ...]:
    if view == "front":
        main = FRONT_TRAITS[int(rng.integers(len(FRONT_TRAITS)))]
        others = [t for t in FRONT_TRAITS if t != main]
        return (main, *[t for t in others if rng.random() < 0.4])
    if view == "side":
        main = SIDE_TRAITS[int(rng.integers(len(SIDE_TRAITS)))]
        others = [t for t in SIDE_TRAITS if t != main]
        return (main, *[t for t in others if rng.random() < 0.3])
    # both views: a limp (seen in both), or one trait of each view
    names = [*FRONT_TRAITS, *SIDE_TRAITS, "limp"]
    main = names[int(rng.integers(len(names)))]
    if main == "limp":
        extra = [*FRONT_TRAITS, *SIDE_TRAITS]
        return (main, extra[int(rng.integers(len(extra)))]) if rng.random() < 0.3 else (main,)
    other_view = SIDE_TRAITS if main in FRONT_TRAITS else FRONT_TRAITS
    return (main, other_view[int(rng.integers(len(other_view)))])


def make_subject(participant_id: str, *, asd: bool, trait_view: TraitView | None, seed: int,
                 traits: tuple[str, ...] | None = None) -> SubjectSpec:
    """One subject, deterministic in ``seed``. ``traits`` overrides the random choice (ASD only)."""
    rng = np.random.default_rng(seed)
    if asd:
        if trait_view is None:
            raise ValueError("an ASD subject needs a trait_view (front, side or both)")
        chosen = traits if traits is not None else _choose_traits(rng, trait_view)
        unknown = [t for t in chosen if t not in TRAITS]
        if unknown or not chosen:
            raise ValueError(f"bad traits {chosen!r} (known: {', '.join(TRAITS)})")
    else:
        chosen = ()
    values = {}
    for trait, (_view, _unit, natural, present) in TRAITS.items():
        values[trait] = _uniform(rng, present if trait in chosen else natural)
    tilt_sign = 1.0 if rng.random() < 0.5 else -1.0
    scene = _scene(rng)
    appearance = _appearance(rng, scene)
    height = float(np.clip(rng.normal(1.68, 0.09), 1.45, 1.95))
    return SubjectSpec(
        participant_id=participant_id,
        label="ASD" if asd else "non-ASD",
        subcategory=chosen[0] if chosen else "normal",
        trait_view=(trait_view or "both") if asd else "none",
        traits=tuple(chosen),
        trunk_flexion_deg=values["trunk_flexion"],
        dropped_head_deg=values["dropped_head"],
        lateral_sway_deg=values["lateral_sway"],
        lateral_tilt_deg=tilt_sign * values["lateral_tilt"],
        limp=values["limp"],
        limp_left=bool(rng.random() < 0.5),
        height_m=height,
        build=float(np.clip(rng.normal(1.0, 0.08), 0.82, 1.25)),
        speed_mps=_uniform(rng, (0.8, 1.25)),
        cadence_spm=_uniform(rng, (96.0, 118.0)),
        arm_swing_deg=_uniform(rng, (10.0, 24.0)),
        yaw_deg=_uniform(rng, (-2.5, 2.5)),
        phase0=float(rng.random()),
        appearance=appearance,
        scene=scene,
        render_seed=int(rng.integers(2**31)),
    )


def parse_trait_views(text: str | None) -> tuple[TraitView, ...]:
    """``"front,side"`` (or ``front_only,side_only``) -> ("front", "side")."""
    if not text:
        return TRAIT_VIEWS
    out: list[TraitView] = []
    for part in text.split(","):
        name = part.strip().lower().removesuffix("_only")
        if name not in TRAIT_VIEWS:
            raise ValueError(f"bad trait view {part.strip()!r} (expected front, side or both)")
        if name not in out:
            out.append(name)  # type: ignore[arg-type]
    return tuple(out)


def sample_subjects(n: int, *, seed: int, asd_fraction: float = 0.5,
                    trait_views: tuple[str, ...] = TRAIT_VIEWS, id_prefix: str = "syn") -> list[SubjectSpec]:
    """``n`` subjects: ``round(n * asd_fraction)`` ASD, their trait views spread evenly over ``trait_views``.

    Deterministic in ``seed``; subject *i* has its own seed, derived from (``seed``, *i*).
    """
    if n < 1:
        raise ValueError("need at least one subject")
    if not 0.0 <= asd_fraction <= 1.0:
        raise ValueError("asd_fraction must be in [0, 1]")
    views = tuple(trait_views)
    bad = [v for v in views if v not in TRAIT_VIEWS]
    if not views or bad:
        raise ValueError(f"trait_views must be a non-empty subset of {TRAIT_VIEWS}, got {views}")
    rng = np.random.default_rng(seed)
    n_asd = round(n * asd_fraction)
    is_asd = np.zeros(n, dtype=bool)
    is_asd[:n_asd] = True
    rng.shuffle(is_asd)
    view_of = [views[k % len(views)] for k in rng.permutation(n_asd)] if n_asd else []
    subject_seeds = np.random.SeedSequence(seed).spawn(n)
    subjects = []
    k = 0
    for i in range(n):
        view: TraitView | None = None
        if is_asd[i]:
            view = view_of[k]  # type: ignore[assignment]
            k += 1
        sub_seed = int(subject_seeds[i].generate_state(1)[0])
        subjects.append(make_subject(f"{id_prefix}{i + 1:04d}", asd=bool(is_asd[i]), trait_view=view,
                                     seed=sub_seed))
    return subjects
