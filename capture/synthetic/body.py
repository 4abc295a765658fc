"""A small articulated walker: a gait cycle drives a 3D skeleton, dressed in ellipsoids and capsules.

World frame (metres): X to the walker's left, Y up, Z the direction of walking; the floor is Y = 0. The
walker starts at ``z_start`` and walks towards +Z at ``speed_mps``. All angles in the code are degrees
until they meet trigonometry.

The gait is the textbook one, simplified: the hip swings +-A around a slight flexion, A set so that the
step length matches speed / cadence; the knee flexes a little after heel strike and about 55 degrees in
swing; the pelvis height follows from keeping the lower foot on the floor (so it bobs twice per stride);
the arms swing against the legs. Posture traits bend this skeleton (see ``capture.synthetic.subjects``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from capture.synthetic.subjects import BGR, SubjectSpec

_U = np.array([0.0, 1.0, 0.0])


@dataclass(frozen=True, slots=True)
class Ellipsoid:
    center: np.ndarray  # (3,)
    axes: np.ndarray  # (3, 3): columns are the semi-axis vectors
    colour: BGR
    bias_m: float = 0.0  # added to the depth when sorting (positive: drawn earlier, i.e. behind)
    group: str = ""  # parts of one group are shaded together, so their joints do not show seams
    normal: np.ndarray | None = None  # a flat detail (eye, brow, mouth): drawn unshaded, only facing the camera


@dataclass(frozen=True, slots=True)
class Capsule:
    p0: np.ndarray
    p1: np.ndarray
    r0: float
    r1: float
    colour: BGR
    bias_m: float = 0.0
    group: str = ""


Part = Ellipsoid | Capsule


def _bump(c: float, mu: float, sd: float) -> float:
    """A Gaussian bump on the gait cycle (period 1)."""
    d = (c - mu + 0.5) % 1.0 - 0.5
    return math.exp(-0.5 * (d / sd) ** 2)


def _stance(c: float) -> float:
    """0..1, largest at mid-stance; zero in swing (stance is the first 60 % of the cycle)."""
    return 0.5 - 0.5 * math.cos(2 * math.pi * c / 0.6) if c < 0.6 else 0.0


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _shade(colour: BGR, k: float) -> BGR:
    return tuple(int(min(255, max(0, v * k))) for v in colour)  # type: ignore[return-value]


class Walker:
    """The posed body of one subject at any time ``t`` (seconds)."""

    def __init__(self, spec: SubjectSpec, *, z_start: float, x_start: float = 0.0) -> None:
        self.spec = spec
        self.H = spec.height_m
        self.b = spec.build
        yaw = math.radians(spec.yaw_deg)
        self.F = np.array([math.sin(yaw), 0.0, math.cos(yaw)])  # forward
        self.L = np.array([math.cos(yaw), 0.0, -math.sin(yaw)])  # walker's left
        self.start = np.array([x_start, 0.0, z_start])
        H = self.H
        self.thigh, self.shin, self.ankle_h, self.foot = 0.245 * H, 0.246 * H, 0.039 * H, 0.15 * H
        self.leg = self.thigh + self.shin
        self.hip_w = 0.083 * H * self.b
        self.stride_hz = spec.cadence_spm / 120.0
        step_m = spec.speed_mps / (spec.cadence_spm / 60.0)
        self.hip_amp = math.degrees(math.asin(min(0.7, step_m / (2 * 0.97 * self.leg))))
        self.knee_swing = 50.0 + 12.0 * (spec.speed_mps - 1.0)
        # the phase of the right leg: half a cycle after the left, shifted by a limp (uneven step timing)
        self.right_offset = 0.5 + (0.07 if spec.limp_left else -0.07) * spec.limp

    # ----------------------------------------------------------------------------------- skeleton

    def _leg(self, c: float, *, affected: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Knee, ankle, heel, toe in the leg's sagittal plane: (forward, up) relative to the hip joint."""
        spec = self.spec
        limp = spec.limp if affected else 0.0
        amp = self.hip_amp * (1.0 - 0.45 * limp)
        hip = 4.0 + amp * math.cos(2 * math.pi * c)
        knee = (4.0 + 14.0 * _bump(c, 0.12, 0.07) + self.knee_swing * (1.0 - 0.35 * limp) * _bump(c, 0.72, 0.11)
                + 0.3 * spec.trunk_flexion_deg  # a stooped trunk is balanced on bent knees
                + 14.0 * limp * _stance(c))  # a painful leg gives way under load: the body dips over it
        foot = 8.0 * _bump(c, 0.02, 0.05) - 18.0 * _bump(c, 0.58, 0.06) + 10.0 * _bump(c, 0.85, 0.08)
        th, sh, ph = math.radians(hip), math.radians(hip - knee), math.radians(foot)
        knee_p = np.array([math.sin(th), -math.cos(th)]) * self.thigh
        ankle_p = knee_p + np.array([math.sin(sh), -math.cos(sh)]) * self.shin
        cph, sph = math.cos(ph), math.sin(ph)

        def rot(f: float, u: float) -> np.ndarray:
            return np.array([f * cph - u * sph, f * sph + u * cph])

        heel = ankle_p + rot(-0.22 * self.foot, -self.ankle_h)
        toe = ankle_p + rot(0.78 * self.foot, -self.ankle_h)
        return knee_p, ankle_p, heel, toe

    def cycle(self, t: float) -> tuple[float, float]:
        """Gait phase (0..1) of the left and the right leg at ``t``; 0 is heel strike."""
        c_left = (self.spec.phase0 + self.stride_hz * t) % 1.0
        return c_left, (c_left + self.right_offset) % 1.0

    def pelvis_position(self, t: float) -> np.ndarray:
        """Where the pelvis centre is at ``t`` (world, metres)."""
        return self._pose(t)[0]["pelvis"]

    def joints(self, t: float) -> dict[str, np.ndarray]:
        """Pelvis, hips, knees, ankles, heels and toes at ``t`` (world, metres)."""
        return self._pose(t)[0]

    def _pose(self, t: float) -> tuple[dict[str, np.ndarray], float, float]:
        """The leg joints, and the trunk's forward flexion and roll to the left (degrees)."""
        spec, H, F, L = self.spec, self.H, self.F, self.L
        c_l, c_r = self.cycle(t)
        legs = {"left": self._leg(c_l, affected=spec.limp_left), "right": self._leg(c_r, affected=not spec.limp_left)}
        lowest = min(min(heel[1], toe[1]) for _k, _a, heel, toe in legs.values())
        c_aff = c_l if spec.limp_left else c_r
        side_aff = 1.0 if spec.limp_left else -1.0
        lurch = _stance(c_aff) * spec.limp
        pelvis_y = -lowest + 0.004 * H
        sway_s = math.sin(2 * math.pi * c_l)  # + while the left foot is on the floor
        shift = (0.012 * H + 0.004 * H * max(0.0, spec.lateral_sway_deg - 2.0)) * sway_s
        shift += 0.02 * H * lurch * side_aff
        root = self.start + F * (spec.speed_mps * t)
        pelvis = root + _U * pelvis_y + L * shift
        joints = {"pelvis": pelvis}
        for side, (knee, ankle, heel, toe) in legs.items():
            s = 1.0 if side == "left" else -1.0
            hip = pelvis + L * (s * self.hip_w)

            def at(p: np.ndarray, inward: float, hip: np.ndarray = hip, s: float = s) -> np.ndarray:
                return hip + F * p[0] + _U * p[1] - L * (s * inward)

            joints[f"hip_{side}"] = hip
            joints[f"knee_{side}"] = at(knee, 0.006 * H)
            joints[f"ankle_{side}"] = at(ankle, 0.012 * H)
            joints[f"heel_{side}"] = at(heel, 0.012 * H)
            joints[f"toe_{side}"] = at(toe, 0.008 * H)
        # trunk: two segments, the upper one bends most; roll + leans to the walker's left
        flex = spec.trunk_flexion_deg + 1.0 * math.sin(4 * math.pi * c_l)
        roll = spec.lateral_tilt_deg + spec.lateral_sway_deg * sway_s + 12.0 * lurch * side_aff
        return joints, flex, roll

    @staticmethod
    def _direction(F: np.ndarray, L: np.ndarray, pitch_deg: float, roll_deg: float) -> tuple[np.ndarray, np.ndarray]:
        """Unit 'up' of a body segment pitched forward and rolled left, and its left axis."""
        a, r = math.radians(pitch_deg), math.radians(roll_deg)
        up = math.sin(a) * F + math.cos(a) * (math.cos(r) * _U + math.sin(r) * L)
        left = math.cos(r) * L - math.sin(r) * _U
        return up, left

    # ----------------------------------------------------------------------------------- dressing

    def parts(self, t: float) -> list[Part]:
        """The body at ``t`` as drawable parts, in world coordinates."""
        spec, H, b, F, L = self.spec, self.H, self.b, self.F, self.L
        look = spec.appearance
        j, flex, roll = self._pose(t)
        c_l, c_r = self.cycle(t)
        pelvis = j["pelvis"]
        d1, l1 = self._direction(F, L, 0.4 * flex, 0.4 * roll)
        d2, l2 = self._direction(F, L, flex, roll)
        f1, f2 = np.cross(l1, d1), np.cross(l2, d2)
        spine_mid = pelvis + d1 * (0.11 * H)
        neck_base = spine_mid + d2 * (0.178 * H)
        shirt, trousers, skin = look.shirt, look.trousers, look.skin
        torso = "torso"
        parts: list[Part] = [
            Ellipsoid(pelvis + d1 * (0.005 * H), np.stack([l1 * (0.1 * H * b), d1 * (0.075 * H),
                                                            f1 * (0.07 * H * b)], axis=1), trousers, group=torso),
            Ellipsoid(pelvis + d1 * (0.075 * H), np.stack([l1 * (0.083 * H * b), d1 * (0.08 * H),
                                                            f1 * (0.066 * H * b)], axis=1), shirt, group=torso),
            Ellipsoid(spine_mid + d2 * (0.08 * H), np.stack([l2 * (0.1 * H * b), d2 * (0.105 * H),
                                                              f2 * (0.072 * H * b)], axis=1), shirt, group=torso),
            Ellipsoid(neck_base - d2 * (0.022 * H), np.stack([l2 * (0.122 * H * b), d2 * (0.042 * H),
                                                               f2 * (0.062 * H * b)], axis=1), shirt, group=torso),
        ]
        # neck and head: the head partly corrects a stoop (the eyes look ahead) unless it is dropped
        neck_pitch = 0.35 * flex + spec.dropped_head_deg
        nd, nl = self._direction(F, L, neck_pitch, 0.5 * roll)
        face = np.cross(nl, nd)
        neck_top = neck_base + nd * (0.042 * H)
        hd = "head"
        parts.append(Capsule(neck_base - d2 * (0.03 * H), neck_top, 0.028 * H, 0.026 * H, skin, bias_m=0.3, group=hd))
        head = neck_top + nd * (0.056 * H) + face * (0.012 * H)
        # drawn in this order: long hair (behind), skull, hair over it, the face over the hair, the nose
        if look.hair_style == "long":
            long_axes = np.stack([nl * (0.06 * H), nd * (0.085 * H), face * (0.045 * H)], axis=1)
            parts.append(Ellipsoid(head - nd * (0.035 * H) - face * (0.03 * H), long_axes, look.hair, bias_m=0.2,
                                   group=hd))
        parts.append(Ellipsoid(head, np.stack([nl * (0.052 * H), nd * (0.068 * H), face * (0.06 * H)], axis=1),
                               skin, group=hd))
        if look.hair_style != "bald":
            hair_axes = np.stack([nl * (0.056 * H), nd * (0.066 * H), face * (0.063 * H)], axis=1)
            parts.append(Ellipsoid(head + nd * (0.014 * H) - face * (0.017 * H), hair_axes, look.hair, bias_m=-0.2,
                                   group=hd))
        parts.append(Ellipsoid(head + face * (0.03 * H) - nd * (0.012 * H),
                               np.stack([nl * (0.046 * H), nd * (0.05 * H), face * (0.037 * H)], axis=1),
                               skin, bias_m=-0.3, group=hd))
        parts.append(Ellipsoid(head + face * (0.062 * H) - nd * (0.008 * H), np.eye(3) * (0.0095 * H),
                               _shade(skin, 0.92), bias_m=-0.4, group=hd))  # nose

        def detail(at: np.ndarray, lat: float, up: float, colour: BGR) -> Ellipsoid:
            axes = np.stack([nl * (lat * H), nd * (up * H), face * (0.002 * H)], axis=1)
            return Ellipsoid(at, axes, colour, group=hd, normal=_unit(at - head))

        for s in (1.0, -1.0):
            eye = head + face * (0.052 * H) + nd * (0.01 * H) + nl * (s * 0.021 * H)
            parts.append(detail(eye, 0.0065, 0.004, (45, 40, 40)))
            parts.append(detail(eye + nd * (0.013 * H) + face * (0.002 * H), 0.011, 0.0025, _shade(look.hair, 0.8)))
        parts.append(detail(head + face * (0.05 * H) - nd * (0.03 * H), 0.014, 0.003, _shade(skin, 0.6)))
        # arms hang from the shoulders and swing against the legs
        for side, c_opp in (("left", c_r), ("right", c_l)):
            s = 1.0 if side == "left" else -1.0
            arm = f"arm_{side}"
            out = L * s
            shoulder = neck_base + l2 * (s * 0.118 * H * b) - d2 * (0.03 * H)
            swing = spec.arm_swing_deg * math.cos(2 * math.pi * c_opp) + 2.0
            elbow_flex = 14.0 + 12.0 * (0.5 + 0.5 * math.cos(2 * math.pi * c_opp))
            ab = math.radians(11.0 + 8.0 * (b - 1.0))
            a = math.radians(swing)
            d_ua = _unit(math.cos(ab) * (-math.cos(a) * _U + math.sin(a) * F) + math.sin(ab) * out)
            a2 = math.radians(swing + elbow_flex)
            d_fa = _unit(math.cos(0.6 * ab) * (-math.cos(a2) * _U + math.sin(a2) * F) + math.sin(0.6 * ab) * out)
            elbow = shoulder + d_ua * (0.186 * H)
            wrist = elbow + d_fa * (0.146 * H)
            parts.append(Ellipsoid(shoulder, np.eye(3) * (0.037 * H * b), shirt, group=torso))
            if look.long_sleeves:
                parts.append(Capsule(shoulder, elbow, 0.034 * H * b, 0.027 * H, shirt, group=arm))
                parts.append(Capsule(elbow, wrist, 0.026 * H, 0.021 * H, shirt, group=arm))
            else:
                sleeve_end = shoulder + d_ua * (0.11 * H)
                parts.append(Capsule(sleeve_end, elbow, 0.028 * H, 0.024 * H, skin, bias_m=0.005, group=arm))
                parts.append(Capsule(shoulder, sleeve_end, 0.036 * H * b, 0.032 * H, shirt, group=arm))
                parts.append(Capsule(elbow, wrist, 0.024 * H, 0.019 * H, skin, group=arm))
            parts.append(Ellipsoid(wrist + d_fa * (0.04 * H), np.stack([out * (0.018 * H), d_fa * (0.047 * H),
                                                                        F * (0.03 * H)], axis=1), skin, group=arm))
        # legs: thigh, shin, shoe
        for side in ("left", "right"):
            leg = f"leg_{side}"
            hip, knee, ankle = j[f"hip_{side}"], j[f"knee_{side}"], j[f"ankle_{side}"]
            heel, toe = j[f"heel_{side}"], j[f"toe_{side}"]
            parts.append(Capsule(hip, knee, 0.062 * H * b, 0.044 * H, trousers, group=leg))
            parts.append(Capsule(knee, ankle, 0.043 * H, 0.031 * H, trousers, group=leg))
            foot_r = 0.025 * H
            up = _unit(np.cross(toe - heel, L)) * foot_r
            parts.append(Capsule(heel + up, toe + up * 0.8, foot_r, foot_r * 0.8, look.shoes, group=leg))
        return parts
