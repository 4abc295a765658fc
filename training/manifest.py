"""The training manifest: one CSV row per recorded front/side walk.

Format
------
A UTF-8 CSV file (a byte-order mark is tolerated) with a header row. Column order is free; every column
in the header must be one of these:

============  ========  =================================================================================
column        required  meaning
============  ========  =================================================================================
participant_id  yes     who walked (str). Cross-validation folds are split by this column, so every walk of
                        one person must carry the same id.
label           yes     ``ASD`` or ``non-ASD`` (read case-insensitively, written exactly so). ASD is the
                        positive class (1).
subcategory     yes     free text, may be empty: ``normal``, ``trunk_flexion``, ``lateral_sway``, ...
                        for synthetic walks; ``DHS``, ``LCS``, ``HipOA``, ... for real ones.
front           yes     front-view video (the patient walks towards the camera).
side            yes     side-view video of the same walk, frame-synchronised with ``front``.
boxes_front     no      CSV of true person boxes for ``front``: header ``frame,x1,y1,x2,y2`` (0-based frame
                        index, pixels, x2/y2 exclusive). Empty: boxes come from the person detector.
boxes_side      no      the same for ``side``.
traits          no      semicolon-separated free text, e.g. ``trunk_flexion=24.0deg;lateral_sway=9.1deg``.
notes           no      free text.
============  ========  =================================================================================

Paths (``front``, ``side``, ``boxes_*``) are absolute or relative to the folder that holds the manifest.
:func:`read_manifest` resolves them to absolute paths and checks that the files exist.

Errors are :class:`ManifestError` with one line naming the file and, where it applies, the line
(``manifest.csv:7: bad label 'asd?' (expected ASD or non-ASD)``). Reported: a missing manifest, missing
or unknown columns, a bad label, an empty participant id, a missing video or boxes file, a manifest with
no rows, and a repeated (participant_id, front) pair.

Example::

    participant_id,label,subcategory,front,side,boxes_front,boxes_side,traits,notes
    syn0001,ASD,trunk_flexion,videos/syn0001_front.mp4,videos/syn0001_side.mp4,,,trunk_flexion=27.5deg,
    syn0002,non-ASD,normal,videos/syn0002_front.mp4,videos/syn0002_side.mp4,,,,
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["COLUMNS", "LABELS", "OPTIONAL_COLUMNS", "REQUIRED_COLUMNS", "Label", "ManifestError", "ManifestRow",
           "read_manifest", "write_manifest"]

Label = Literal["ASD", "non-ASD"]
LABELS: tuple[Label, ...] = ("ASD", "non-ASD")
REQUIRED_COLUMNS: tuple[str, ...] = ("participant_id", "label", "subcategory", "front", "side")
OPTIONAL_COLUMNS: tuple[str, ...] = ("boxes_front", "boxes_side", "traits", "notes")
COLUMNS: tuple[str, ...] = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
_LABEL_BY_LOWER = {label.lower(): label for label in LABELS}


class ManifestError(ValueError):
    """A manifest that cannot be read or written; the message is one line naming the file (and line)."""


@dataclass(frozen=True, slots=True)
class ManifestRow:
    participant_id: str
    label: Label
    subcategory: str
    front: Path
    side: Path
    boxes_front: Path | None = None
    boxes_side: Path | None = None
    traits: tuple[str, ...] = ()
    notes: str = ""

    def __post_init__(self) -> None:
        if self.label not in LABELS:
            raise ManifestError(f"bad label {self.label!r} (expected ASD or non-ASD)")
        # accept str paths and a list of traits from callers; store Path / tuple
        for name in ("front", "side", "boxes_front", "boxes_side"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))
        if not isinstance(self.traits, tuple):
            object.__setattr__(self, "traits", tuple(self.traits))

    @property
    def is_asd(self) -> bool:
        """ASD is the positive class (1)."""
        return self.label == "ASD"

    @property
    def target(self) -> int:
        """The class index: 1 for ASD, 0 for non-ASD."""
        return int(self.is_asd)


def _resolve(base: Path, text: str) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() else (base / path).resolve()


def _parse_label(text: str) -> Label | None:
    return _LABEL_BY_LOWER.get(text.strip().lower())


def read_manifest(path: str | os.PathLike[str]) -> list[ManifestRow]:
    """Read and check a manifest; paths come back absolute. Raises :class:`ManifestError`."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"manifest not found: {path}")
    base = path.resolve().parent
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None or not any(c.strip() for c in header):
                raise ManifestError(f"{path}: empty manifest (no header, no rows)")
            columns = [c.strip() for c in header]
            missing = [c for c in REQUIRED_COLUMNS if c not in columns]
            if missing:
                raise ManifestError(f"{path}:1: missing columns: {', '.join(missing)} "
                                    f"(required: {', '.join(REQUIRED_COLUMNS)})")
            unknown = [c for c in columns if c not in COLUMNS]
            if unknown:
                raise ManifestError(f"{path}:1: unknown columns: {', '.join(unknown)} "
                                    f"(allowed: {', '.join(COLUMNS)})")
            repeated = sorted({c for c in columns if columns.count(c) > 1})
            if repeated:
                raise ManifestError(f"{path}:1: repeated columns: {', '.join(repeated)}")
            rows: list[ManifestRow] = []
            first_line: dict[tuple[str, Path], int] = {}
            for values in reader:
                line = reader.line_num
                if not any(v.strip() for v in values):
                    continue  # blank line
                if len(values) != len(columns):
                    raise ManifestError(f"{path}:{line}: {len(values)} fields, the header has {len(columns)}")
                rec = {c: v.strip() for c, v in zip(columns, values, strict=True)}
                rows.append(_row(path, line, base, rec, first_line))
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise ManifestError(f"{path}: not a readable CSV file ({exc})") from None
    if not rows:
        raise ManifestError(f"{path}: empty manifest (a header but no rows)")
    return rows


def _row(path: Path, line: int, base: Path, rec: dict[str, str],
         first_line: dict[tuple[str, Path], int]) -> ManifestRow:
    where = f"{path}:{line}"
    pid = rec["participant_id"]
    if not pid:
        raise ManifestError(f"{where}: empty participant_id")
    label = _parse_label(rec["label"])
    if label is None:
        raise ManifestError(f"{where}: bad label {rec['label']!r} (expected ASD or non-ASD)")
    files: dict[str, Path | None] = {}
    for column in ("front", "side", "boxes_front", "boxes_side"):
        text = rec.get(column, "")
        if not text:
            if column in REQUIRED_COLUMNS:
                raise ManifestError(f"{where}: empty {column} (a video path is required)")
            files[column] = None
            continue
        resolved = _resolve(base, text)
        if not resolved.is_file():
            what = "video" if column in REQUIRED_COLUMNS else "boxes file"
            raise ManifestError(f"{where}: {column} {what} not found: {text} (looked at {resolved})")
        files[column] = resolved
    key = (pid, files["front"])
    if key in first_line:
        raise ManifestError(f"{where}: duplicate row for participant {pid!r} and front {rec['front']!r} "
                            f"(first at line {first_line[key]})")
    first_line[key] = line  # type: ignore[index]
    traits = tuple(t.strip() for t in rec.get("traits", "").split(";") if t.strip())
    return ManifestRow(participant_id=pid, label=label, subcategory=rec["subcategory"],
                       front=files["front"], side=files["side"],  # type: ignore[arg-type]
                       boxes_front=files["boxes_front"], boxes_side=files["boxes_side"],
                       traits=traits, notes=rec.get("notes", ""))


def _relative(path: Path | None, base: Path) -> str:
    """A path as written to the manifest: relative to ``base`` when it lies inside it, else absolute."""
    if path is None:
        return ""
    resolved = path if path.is_absolute() else (base / path)
    resolved = Path(os.path.abspath(resolved))
    try:
        return resolved.relative_to(base).as_posix()
    except ValueError:
        return str(resolved)


def write_manifest(path: str | os.PathLike[str], rows: Iterable[ManifestRow]) -> Path:
    """Write ``rows`` with every column; paths inside the manifest's folder are written relative to it.

    Relative paths in ``rows`` are taken as relative to the manifest's folder. Returns the path written.
    """
    path = Path(path)
    base = Path(os.path.abspath(path.parent))
    lines: list[list[str]] = []
    for i, row in enumerate(rows):
        if row.label not in LABELS:
            raise ManifestError(f"{path}: row {i}: bad label {row.label!r} (expected ASD or non-ASD)")
        if not row.participant_id.strip():
            raise ManifestError(f"{path}: row {i}: empty participant_id")
        bad = [t for t in row.traits if ";" in t]
        if bad:
            raise ManifestError(f"{path}: row {i}: a trait may not contain ';': {bad[0]!r}")
        lines.append([row.participant_id, row.label, row.subcategory, _relative(row.front, base),
                      _relative(row.side, base), _relative(row.boxes_front, base), _relative(row.boxes_side, base),
                      ";".join(row.traits), row.notes])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(lines)
    tmp.replace(path)
    return path
