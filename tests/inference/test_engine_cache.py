"""The engine cache: build once per key, atomically; --rebuild replaces only the entries it is asked for."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference.engines.cache import EngineCache


def _builder(calls: list[str], text: str):
    def build(folder: Path) -> None:
        calls.append(text)
        (folder / "artefact.txt").write_text(text)
    return build


def test_built_once_per_key(tmp_path: Path) -> None:
    cache, calls = EngineCache(tmp_path), []
    a, built_a = cache.get_or_build("onnx", {"model": "a"}, _builder(calls, "a"))
    again, built_again = cache.get_or_build("onnx", {"model": "a"}, _builder(calls, "a2"))
    b, _ = cache.get_or_build("onnx", {"model": "b"}, _builder(calls, "b"))
    assert (built_a, built_again, again) == (True, False, a) and a != b
    assert calls == ["a", "b"] and (a / "artefact.txt").read_text() == "a"
    assert (a / "key.json").is_file()


def test_failed_build_leaves_nothing(tmp_path: Path) -> None:
    def broken(folder: Path) -> None:
        (folder / "half.bin").write_text("x")
        raise RuntimeError("build failed")

    cache = EngineCache(tmp_path)
    with pytest.raises(RuntimeError):
        cache.get_or_build("onnx", {"model": "a"}, broken)
    assert not list((tmp_path / "onnx").iterdir())


def test_rebuild_replaces_only_the_entries_asked_for_and_only_once(tmp_path: Path) -> None:
    calls: list[str] = []
    a, _ = EngineCache(tmp_path).get_or_build("onnx", {"model": "a"}, _builder(calls, "a"))
    b, _ = EngineCache(tmp_path).get_or_build("onnx", {"model": "b"}, _builder(calls, "b"))
    cache = EngineCache(tmp_path, rebuild=True)
    _, built = cache.get_or_build("onnx", {"model": "a"}, _builder(calls, "a-new"))
    _, built_twice = cache.get_or_build("onnx", {"model": "a"}, _builder(calls, "a-newer"))
    assert (built, built_twice) == (True, False)
    assert (a / "artefact.txt").read_text() == "a-new"
    assert (b / "artefact.txt").read_text() == "b"  # another model's entry is untouched
