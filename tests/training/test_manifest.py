"""The training manifest: round trip and every one-line error."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.manifest import COLUMNS, ManifestError, ManifestRow, read_manifest, write_manifest

HEADER = ",".join(COLUMNS)


@pytest.fixture
def videos(tmp_path: Path) -> Path:
    (tmp_path / "videos").mkdir()
    for name in ("a_front.mp4", "a_side.mp4", "b_front.mp4", "b_side.mp4"):
        (tmp_path / "videos" / name).write_bytes(b"not really a video")
    (tmp_path / "boxes.csv").write_text("frame,x1,y1,x2,y2\n0,1,2,3,4\n")
    return tmp_path


def _write(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_round_trip(videos: Path, tmp_path: Path) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside.mp4"
    outside.write_bytes(b"x")
    rows = [
        ManifestRow("p1", "ASD", "trunk_flexion", videos / "videos/a_front.mp4", videos / "videos/a_side.mp4",
                    boxes_front=videos / "boxes.csv", traits=("trunk_flexion=20.0deg", "lateral_tilt=8.0deg,left"),
                    notes='a note, with a comma and "quotes"'),
        ManifestRow("p2", "non-ASD", "normal", Path("videos/b_front.mp4"), outside),
    ]
    path = write_manifest(videos / "manifest.csv", rows)
    text = path.read_text()
    assert text.splitlines()[0] == HEADER
    assert "videos/a_front.mp4" in text and f"{videos}/" not in text  # relative inside the folder
    assert str(outside) in text  # absolute outside it
    back = read_manifest(path)
    assert back[0] == ManifestRow("p1", "ASD", "trunk_flexion", (videos / "videos/a_front.mp4").resolve(),
                                  (videos / "videos/a_side.mp4").resolve(),
                                  boxes_front=(videos / "boxes.csv").resolve(),
                                  traits=("trunk_flexion=20.0deg", "lateral_tilt=8.0deg,left"),
                                  notes='a note, with a comma and "quotes"')
    assert back[1].front == (videos / "videos/b_front.mp4").resolve() and back[1].side == outside.resolve()
    assert back[1].boxes_front is None and back[1].boxes_side is None and back[1].traits == () and back[1].notes == ""
    assert [r.is_asd for r in back] == [True, False] and [r.target for r in back] == [1, 0]
    assert all(r.front.is_absolute() and r.side.is_absolute() for r in back)


def test_lenient_reading(videos: Path) -> None:
    """Required columns only, any order, any label case, a byte-order mark, blank lines, absolute paths."""
    front = videos / "videos/a_front.mp4"
    path = videos / "m.csv"
    path.write_text("\ufeffside,front,label,participant_id,subcategory\n\n"
                    f"videos/a_side.mp4,{front},asd,p1,DHS\n,,,,\n"
                    "videos/b_side.mp4,videos/b_front.mp4,NON-asd,p2,\n", encoding="utf-8")
    rows = read_manifest(path)
    assert [(r.participant_id, r.label, r.subcategory) for r in rows] == [("p1", "ASD", "DHS"), ("p2", "non-ASD", "")]
    assert rows[0].front == front


def test_row_checks_its_label() -> None:
    with pytest.raises(ManifestError, match="bad label"):
        ManifestRow("p", "asd", "x", Path("f"), Path("s"))  # type: ignore[arg-type]


def _error(path: Path) -> str:
    with pytest.raises(ManifestError) as info:
        read_manifest(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    return message


def test_missing_file(tmp_path: Path) -> None:
    assert "manifest not found" in _error(tmp_path / "nope.csv")


def test_missing_columns(videos: Path) -> None:
    message = _error(_write(videos / "m.csv", "participant_id,label,front,side", "p1,ASD,videos/a_front.mp4,x"))
    assert ":1: missing columns: subcategory" in message


def test_unknown_columns(videos: Path) -> None:
    message = _error(_write(videos / "m.csv", HEADER + ",age", "p1,ASD,x,videos/a_front.mp4,videos/a_side.mp4,,,,,70"))
    assert ":1: unknown columns: age" in message


@pytest.mark.parametrize("label", ["healthy", "", "ASD?"])
def test_bad_label(videos: Path, label: str) -> None:
    message = _error(_write(videos / "m.csv", HEADER, "p1,ASD,x,videos/a_front.mp4,videos/a_side.mp4,,,,",
                            f"p2,{label},x,videos/b_front.mp4,videos/b_side.mp4,,,,"))
    assert ":3: bad label" in message and repr(label) in message


@pytest.mark.parametrize(("column", "line"), [
    ("front", "p1,ASD,x,videos/missing.mp4,videos/a_side.mp4,,,,"),
    ("side", "p1,ASD,x,videos/a_front.mp4,videos/missing.mp4,,,,"),
    ("boxes_side", "p1,ASD,x,videos/a_front.mp4,videos/a_side.mp4,,missing.csv,,"),
])
def test_missing_video_or_boxes(videos: Path, column: str, line: str) -> None:
    message = _error(_write(videos / "m.csv", HEADER, line))
    assert f":2: {column} " in message and "not found: " in message and "missing." in message


def test_empty_manifest(videos: Path) -> None:
    assert "empty manifest" in _error(_write(videos / "m.csv", HEADER))
    assert "empty manifest" in _error(_write(videos / "m2.csv", ""))


def test_duplicate_rows(videos: Path) -> None:
    message = _error(_write(videos / "m.csv", HEADER, "p1,ASD,x,videos/a_front.mp4,videos/a_side.mp4,,,,",
                            "p2,ASD,x,videos/b_front.mp4,videos/b_side.mp4,,,,",
                            "p1,ASD,y,./videos/a_front.mp4,videos/b_side.mp4,,,,"))
    assert ":4: duplicate row for participant 'p1'" in message and "first at line 2" in message


def test_other_row_errors(videos: Path) -> None:
    assert ":2: empty participant_id" in _error(_write(videos / "m.csv", HEADER,
                                                       ",ASD,x,videos/a_front.mp4,videos/a_side.mp4,,,,"))
    assert ":2: 3 fields" in _error(_write(videos / "m.csv", HEADER, "p1,ASD,x"))


def test_write_rejects_a_trait_with_a_semicolon(tmp_path: Path) -> None:
    row = ManifestRow("p1", "ASD", "x", tmp_path / "f.mp4", tmp_path / "s.mp4", traits=("a;b",))
    with pytest.raises(ManifestError, match="may not contain ';'"):
        write_manifest(tmp_path / "m.csv", [row])
