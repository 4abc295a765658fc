"""Tests for the typed configuration: defaults, configs/default.yaml, strict checking, overrides and env expansion."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from core.configtools import ConfigError, expand_env, from_mapping, with_overrides
from dualgait.config import DualgaitConfig, load_config
from inference.config import WindowConfig

DEFAULT_YAML = Path(__file__).parents[2] / "configs" / "default.yaml"


@pytest.fixture(autouse=True)
def _no_assets_env(monkeypatch):
    """The defaults reference ${DUALGAIT_ASSETS:-...}; keep the developer's environment out of these tests."""
    monkeypatch.delenv("DUALGAIT_ASSETS", raising=False)


def _write(tmp_path: Path, text: str, name: str = "cfg.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- defaults


def test_no_file_gives_dataclass_defaults():
    """load_config() without a file equals the dataclass defaults (strings env-expanded)."""
    cfg = load_config()
    assert isinstance(cfg, DualgaitConfig)
    defaults = DualgaitConfig()
    assert cfg.endpoints == defaults.endpoints
    assert cfg.aggregator == defaults.aggregator
    assert dataclasses.asdict(cfg.inference.window) == dataclasses.asdict(defaults.inference.window)
    assert cfg.inference.crop == defaults.inference.crop
    model = dataclasses.replace(defaults.inference.model, cache_dir=cfg.inference.model.cache_dir)
    assert cfg.inference.model == model
    assert cfg.inference.model.cache_dir in ("~/.cache/dualgait", os.environ.get("DUALGAIT_CACHE_DIR"))
    assert cfg.capture.speed == 1.0 and cfg.capture.encoding == "raw"
    assert cfg.inference.window.frames == 8
    assert cfg.inference.window.pair_tolerance_s is None
    training = dataclasses.replace(defaults.training, cache_dir=cfg.training.cache_dir)
    assert cfg.training == training
    assert cfg.training.cache_dir in ("~/.cache/dualgait/training",
                                      f"{os.environ.get('DUALGAIT_CACHE_DIR')}/training")


def test_defaults_expand_env_references():
    """${DUALGAIT_ASSETS:-../shared/assets} in the built-in defaults is expanded like YAML strings are."""
    cfg = load_config()
    assert cfg.capture.front == "../shared/assets/videos/walk_front.mp4"
    assert cfg.capture.side == "../shared/assets/videos/walk_side.mp4"
    assert cfg.inference.detector.weights == "../shared/assets/weights/yolo11n_int8_openvino_model"


def test_defaults_follow_assets_env(monkeypatch):
    """Setting DUALGAIT_ASSETS moves every default asset path."""
    monkeypatch.setenv("DUALGAIT_ASSETS", "/data/assets")
    cfg = load_config()
    assert cfg.capture.front == "/data/assets/videos/walk_front.mp4"
    assert cfg.inference.detector.weights == "/data/assets/weights/yolo11n_int8_openvino_model"


def test_default_yaml_equals_builtin_defaults():
    """configs/default.yaml documents exactly the built-in defaults."""
    assert DEFAULT_YAML.is_file(), f"{DEFAULT_YAML} is missing"
    assert dataclasses.asdict(load_config(DEFAULT_YAML)) == dataclasses.asdict(load_config(None))


def test_empty_yaml_file_gives_defaults(tmp_path):
    """An empty (or comment-only) file is an empty mapping."""
    path = _write(tmp_path, "# nothing here\n")
    assert dataclasses.asdict(load_config(path)) == dataclasses.asdict(load_config(None))


def test_partial_yaml_keeps_other_defaults(tmp_path):
    """Keys not in the file keep their defaults; ints given for floats become floats."""
    path = _write(tmp_path, "capture:\n  speed: 2\ninference:\n  window:\n    frames: 4\n    min_visible_frames: 4\n")
    cfg = load_config(path)
    assert cfg.capture.speed == 2.0 and isinstance(cfg.capture.speed, float)
    assert cfg.inference.window.frames == 4
    assert cfg.inference.window.duration_s == 1.0
    assert cfg.endpoints.front == "tcp://127.0.0.1:5701"


# --------------------------------------------------------------------------- strict checking


def test_unknown_key_names_dotted_path():
    """A typo in a nested key is reported with its dotted path."""
    with pytest.raises(ConfigError, match=r"inference\.window\.frams: unknown key"):
        load_config(None, ["inference.window.frams=8"])


def test_unknown_top_level_section(tmp_path):
    """Unknown top-level sections are errors too."""
    path = _write(tmp_path, "captrue:\n  speed: 2\n")
    with pytest.raises(ConfigError, match="captrue: unknown key"):
        load_config(path)


@pytest.mark.parametrize(
    ("override", "path"),
    [
        ("capture.speed=fast", "capture.speed"),
        ("inference.window.frames=8.5", "inference.window.frames"),
        ("aggregator.console=1", "aggregator.console"),
        ("endpoints.front=5701", "endpoints.front"),
        ("inference.window.pair_tolerance_s=abc", "inference.window.pair_tolerance_s"),
        ("inference.window=3", "inference.window"),
        ("aggregator.output_dir=[a, b]", "aggregator.output_dir"),
    ],
)
def test_wrong_type_names_path(override, path):
    """A value of the wrong type raises ConfigError naming the dotted path."""
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    assert str(info.value).startswith(f"{path}:")


@pytest.mark.parametrize("value", ["true", "false"])
def test_bool_not_accepted_for_int(value):
    """true/false is not an integer (bool is an int subclass in Python)."""
    with pytest.raises(ConfigError, match=r"inference\.window\.frames: expected an integer"):
        load_config(None, [f"inference.window.frames={value}"])


def test_bool_not_accepted_for_float():
    """true is not a number either."""
    with pytest.raises(ConfigError, match=r"capture\.speed: expected a number"):
        load_config(None, ["capture.speed=true"])


@pytest.mark.parametrize(("override", "path"), [("capture.encoding=png", "capture.encoding"),
                                               ("inference.model.precision=fp8", "inference.model.precision"),
                                               ("inference.model.engine=tflite", "inference.model.engine")])
def test_literal_violation(override, path):
    """Values outside a Literal's choices are rejected, listing the choices."""
    with pytest.raises(ConfigError, match=rf"{path}: expected one of \["):
        load_config(None, [override])


def test_optional_literal_violation():
    """An optional Literal lists its choices and null."""
    pattern = r"inference\.model\.variant: expected 'single_front' \| .* or null, got 'mid'"
    with pytest.raises(ConfigError, match=pattern):
        load_config(None, ["inference.model.variant=mid"])


def test_literal_choice_accepted():
    """A listed Literal choice is accepted."""
    assert load_config(None, ["capture.encoding=jpeg"]).capture.encoding == "jpeg"


def test_post_init_errors_become_config_errors():
    """Dataclass __post_init__ checks surface as ConfigError naming the section."""
    with pytest.raises(ConfigError, match=r"^capture: speed must be > 0"):
        load_config(None, ["capture.speed=0"])


# --------------------------------------------------------------------------- overrides


def test_set_overrides_take_effect():
    """--set style overrides are parsed as YAML and applied."""
    cfg = load_config(None, ["capture.speed=2.5", "inference.window.stride_s=0.5"])
    assert cfg.capture.speed == 2.5
    assert cfg.inference.window.stride_s == 0.5
    assert cfg.inference.window.stride_samples == 4


def test_overrides_win_over_file(tmp_path):
    """Overrides are applied after the YAML file."""
    path = _write(tmp_path, "capture:\n  speed: 3.0\n  jpeg_quality: 50\n")
    cfg = load_config(path, ["capture.speed=4"])
    assert cfg.capture.speed == 4.0
    assert cfg.capture.jpeg_quality == 50


def test_override_null_value():
    """'null' in an override sets an optional field to None."""
    cfg = load_config(None, ["aggregator.output_dir=/tmp/out", "aggregator.output_dir=null"])
    assert cfg.aggregator.output_dir is None


@pytest.mark.parametrize("bad", ["capture.speed", "=3", "capture.speed.x=1"])
def test_malformed_override(bad):
    """Overrides without '=', without a key, or descending into a value are ConfigErrors."""
    with pytest.raises(ConfigError, match="override"):
        load_config(None, ["capture.speed=2", bad])


@pytest.mark.parametrize("stride", ["0.3", "0.1", "0", "-0.125"])
def test_invalid_stride(stride):
    """stride_s must be a positive multiple of duration_s / frames (0.125 s by default)."""
    with pytest.raises(ConfigError, match=r"inference\.window: stride_s must be a positive multiple"):
        load_config(None, [f"inference.window.stride_s={stride}"])


@pytest.mark.parametrize(("stride", "samples"), [("0.125", 1), ("0.375", 3), ("2.0", 16)])
def test_valid_strides(stride, samples):
    """Multiples of the sample step are accepted, also strides longer than a window."""
    assert load_config(None, [f"inference.window.stride_s={stride}"]).inference.window.stride_samples == samples


def test_min_visible_frames_checked():
    """min_visible_frames must lie in 1..frames."""
    with pytest.raises(ConfigError, match="min_visible_frames"):
        load_config(None, ["inference.window.min_visible_frames=9"])


def test_with_overrides_returns_new_validated_config():
    """with_overrides merges nested overrides into a copy, leaves the original alone, and validates."""
    base = load_config()
    new = with_overrides(base, {"capture": {"speed": 3}, "inference": {"window": {"stride_s": 0.25}}})
    assert new is not base
    assert new.capture.speed == 3.0
    assert new.inference.window.stride_s == 0.25
    assert new.inference.window.frames == base.inference.window.frames
    assert new.capture.front == base.capture.front
    assert base.capture.speed == 1.0 and base.inference.window.stride_s == 1.0
    with pytest.raises(ConfigError, match=r"inference\.window\.frams: unknown key"):
        with_overrides(base, {"inference": {"window": {"frams": 4}}})
    with pytest.raises(ConfigError, match=r"inference\.window: stride_s"):
        with_overrides(base, {"inference": {"window": {"stride_s": 0.2}}})


# --------------------------------------------------------------------------- environment expansion


def test_env_default_used_when_unset(monkeypatch, tmp_path):
    """${X:-default} takes the default when X is unset."""
    monkeypatch.delenv("DG_TEST_DIR", raising=False)
    path = _write(tmp_path, "aggregator:\n  output_dir: ${DG_TEST_DIR:-/tmp/fallback}/out\n")
    assert load_config(path).aggregator.output_dir == "/tmp/fallback/out"


def test_env_value_used_when_set(monkeypatch, tmp_path):
    """${X:-default} and ${X} take X's value when set."""
    monkeypatch.setenv("DG_TEST_DIR", "/srv/run")
    monkeypatch.setenv("DG_TEST_HOST", "10.0.0.2")
    path = _write(tmp_path, "aggregator:\n  output_dir: ${DG_TEST_DIR:-/tmp/fallback}/out\n"
                            "endpoints:\n  front: tcp://${DG_TEST_HOST}:6000\n")
    cfg = load_config(path)
    assert cfg.aggregator.output_dir == "/srv/run/out"
    assert cfg.endpoints.front == "tcp://10.0.0.2:6000"


def test_env_in_override(monkeypatch):
    """Overrides go through the same expansion."""
    monkeypatch.setenv("DG_TEST_HOST", "10.0.0.3")
    assert load_config(None, ["endpoints.side=tcp://${DG_TEST_HOST}:1"]).endpoints.side == "tcp://10.0.0.3:1"


def test_env_unset_without_default_is_error(monkeypatch, tmp_path):
    """${X} with X unset raises ConfigError naming the variable."""
    monkeypatch.delenv("DG_TEST_MISSING", raising=False)
    path = _write(tmp_path, "endpoints:\n  front: tcp://${DG_TEST_MISSING}:6000\n")
    with pytest.raises(ConfigError, match="DG_TEST_MISSING is not set"):
        load_config(path)


def test_env_unset_in_optional_field_is_error(monkeypatch, tmp_path):
    """An unset variable in an optional (str | None) field is still an error."""
    monkeypatch.delenv("DG_TEST_MISSING", raising=False)
    path = _write(tmp_path, "aggregator:\n  output_dir: ${DG_TEST_MISSING}/out\n")
    with pytest.raises(ConfigError, match="DG_TEST_MISSING"):
        load_config(path)


def test_env_unset_in_optional_field_says_not_set(monkeypatch, tmp_path):
    """For str | None fields the error must still say that the environment variable is not set."""
    monkeypatch.delenv("DG_TEST_MISSING", raising=False)
    path = _write(tmp_path, "aggregator:\n  output_dir: ${DG_TEST_MISSING}/out\n")
    with pytest.raises(ConfigError, match="DG_TEST_MISSING is not set"):
        load_config(path)


def test_env_unset_error_names_path(monkeypatch):
    """Like every other config error, an unset variable's message names the key that references it."""
    monkeypatch.delenv("DG_TEST_MISSING", raising=False)
    with pytest.raises(ConfigError, match=r"endpoints\.front"):
        load_config(None, ["endpoints.front=tcp://${DG_TEST_MISSING}:1"])


def test_expand_env_direct(monkeypatch):
    """expand_env handles several references and leaves other text alone."""
    monkeypatch.setenv("DG_A", "alpha")
    monkeypatch.delenv("DG_B", raising=False)
    assert expand_env("${DG_A}-${DG_B:-beta}-$DG_A-${DG_B:-}") == "alpha-beta-$DG_A-"


# --------------------------------------------------------------------------- file errors


def test_bad_yaml_file(tmp_path):
    """Unparsable YAML is a one-line ConfigError with the location."""
    path = _write(tmp_path, "capture:\n  speed: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML") as info:
        load_config(path)
    assert "\n" not in str(info.value)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path):
    """A missing config file is a ConfigError, not FileNotFoundError."""
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize("text", ["- a\n- b\n", "42\n", "just a string\n"])
def test_top_level_not_mapping(tmp_path, text):
    """The file must hold a mapping at the top level."""
    with pytest.raises(ConfigError, match="mapping at the top level"):
        load_config(_write(tmp_path, text))


def test_from_mapping_on_section_dataclass():
    """from_mapping works for any section dataclass and prefixes paths with 'where'."""
    win = from_mapping(WindowConfig, {"frames": 4, "stride_s": 0.5, "min_visible_frames": 2})
    assert (win.frames, win.step_s, win.stride_samples) == (4, 0.25, 2)
    with pytest.raises(ConfigError, match=r"^w\.frames: expected an integer"):
        from_mapping(WindowConfig, {"frames": "4"}, "w")


@pytest.mark.parametrize(("overrides", "message"), [
    (["inference.model.engine=torch", "inference.model.device=cpu", "inference.model.precision=fp16"],
     "engine torch on cpu runs fp32, bf16, not fp16"),
    (["inference.model.engine=openvino", "inference.model.device=cuda"], "engine openvino runs on cpu, not cuda"),
    (["inference.model.engine=tensorrt", "inference.model.device=cuda", "inference.model.precision=int8"],
     "engine tensorrt on cuda runs fp16, fp32, not int8"),
])
def test_engine_precision_combinations_are_checked(overrides, message):
    """An engine/device/precision combination that cannot run is a config error naming what can."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(None, overrides)


# --------------------------------------------------------------------------- training section


def test_training_defaults_follow_the_paper():
    """The training section defaults to the paper's protocol and to the live window length."""
    cfg = load_config(DEFAULT_YAML)
    t = cfg.training
    assert (t.folds, t.epochs_max, t.patience, t.lr) == (5, 50, 5, 1e-4)
    assert (t.variant, t.width, t.input_px, t.pretrained, t.device, t.amp) == ("late", 64, 224, None, "auto", False)
    assert t.frames == cfg.inference.window.frames
    assert t.input_px == cfg.inference.crop.input_px


def test_training_cache_dir_follows_env(monkeypatch):
    """training.cache_dir expands ${DUALGAIT_CACHE_DIR:-...} like the engine cache does."""
    monkeypatch.setenv("DUALGAIT_CACHE_DIR", "/data/cache")
    assert load_config(DEFAULT_YAML).training.cache_dir == "/data/cache/training"


@pytest.mark.parametrize(("override", "message"), [
    ("training.folds=1", r"^training: folds must be >= 2"),
    ("training.patience=0", r"^training: epochs_max and patience"),
    ("training.lr=0", r"^training: lr must be > 0"),
    ("training.input_px=16", r"^training: input_px must be >= 32"),
    ("training.variant=mid", r"^training\.variant: expected one of \["),
    ("training.device=tpu", r"^training\.device: expected one of \["),
    ("training.epochs=3", r"^training\.epochs: unknown key"),
    ("training.amp=1", r"^training\.amp: expected true/false"),
])
def test_training_section_is_checked(override, message):
    """Bad training values are one-line config errors naming the key."""
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_training_overrides():
    """Training settings can be changed with --set like any other section."""
    cfg = load_config(None, ["training.folds=3", "training.pretrained=/w/SLOW_8x8_R50.pyth", "training.lr=0.001"])
    assert (cfg.training.folds, cfg.training.pretrained, cfg.training.lr) == (3, "/w/SLOW_8x8_R50.pyth", 0.001)


def test_training_frames_follow_the_live_window_length():
    """training.frames left out takes inference.window.frames: T is written once."""
    cfg = load_config(None, ["inference.window.frames=4", "inference.window.min_visible_frames=4"])
    assert cfg.training.frames == 4
    assert DualgaitConfig().training.frames == DualgaitConfig().inference.window.frames == 8


@pytest.mark.parametrize("frames", [4, 16])
def test_training_frames_agreeing_with_the_window_load(tmp_path, frames):
    """A file that writes both keys loads when they agree."""
    path = _write(tmp_path, f"inference:\n  window:\n    frames: {frames}\n    min_visible_frames: 4\n"
                            f"training:\n  frames: {frames}\n")
    cfg = load_config(path)
    assert cfg.training.frames == cfg.inference.window.frames == frames


@pytest.mark.parametrize(("path", "overrides", "message"), [
    (None, ["training.frames=4"], "training.frames (4) must equal inference.window.frames (8)"),
    (DEFAULT_YAML, ["training.frames=4"], "training.frames (4) must equal inference.window.frames (8)"),
    (None, ["inference.window.frames=4", "inference.window.min_visible_frames=4", "training.frames=8"],
     "training.frames (8) must equal inference.window.frames (4)"),
])
def test_training_frames_differing_from_the_window_is_a_config_error(path, overrides, message):
    """A training T that the live windows cannot feed is a one-line error when the config is read, naming both keys."""
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        load_config(path, overrides)
    assert "\n" not in str(info.value)


def test_reading_a_config_needs_no_torch():
    """Loading (and checking) a config, variants included, imports no torch: the CLI and capture start fast."""
    code = ("import sys; from dualgait.config import load_config; load_config(); "
            f"load_config({str(DEFAULT_YAML)!r}, ['inference.model.variant=gated', 'training.variant=early']); "
            "sys.exit('torch imported' if 'torch' in sys.modules else 0)")
    done = subprocess.run([sys.executable, "-c", code], cwd=DEFAULT_YAML.parents[1], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr


def test_profiles_load_and_set_what_they_promise():
    """configs/cpu-realtime.yaml and configs/gpu.yaml are valid partial configs with their engines."""
    cpu = load_config(DEFAULT_YAML.parent / "cpu-realtime.yaml")
    assert (cpu.inference.model.engine, cpu.inference.model.precision, cpu.inference.model.variant) == (
        "openvino", "int8", "late")
    assert cpu.inference.crop.input_px == 224 and cpu.inference.detector.batch_views
    gpu = load_config(DEFAULT_YAML.parent / "gpu.yaml")
    assert (gpu.inference.model.engine, gpu.inference.model.device, gpu.inference.model.precision) == (
        "tensorrt", "cuda", "fp16")
    assert gpu.inference.detector.device == "cuda:0" and gpu.inference.detector.half


def _walkway(id_: str = "bay2", port: int = 5711, **extra) -> dict:
    return {"id": id_, "front": "usb:2", "side": "usb:3", "front_endpoint": f"tcp://127.0.0.1:{port}",
            "side_endpoint": f"tcp://127.0.0.1:{port + 1}", **extra}


def test_walkways_add_camera_pairs_that_each_see_their_own_config():
    cfg = from_mapping(DualgaitConfig, {"walkways": [_walkway(walkway_side=[0.1, 0.2, 0.9, 1.0])]})
    assert cfg.walkway_ids() == ["main", "bay2"]
    bay = cfg.for_walkway("bay2")
    assert (bay.capture.front, bay.capture.side) == ("usb:2", "usb:3")
    assert (bay.endpoints.front, bay.endpoints.side) == ("tcp://127.0.0.1:5711", "tcp://127.0.0.1:5712")
    assert bay.endpoints.scores == cfg.endpoints.scores and bay.walkways == []
    assert bay.inference.patient.walkway_side == [0.1, 0.2, 0.9, 1.0]
    assert bay.inference.patient.walkway_front == cfg.inference.patient.walkway_front
    main = cfg.for_walkway("main")
    assert main.capture.front == cfg.capture.front and main.walkways == []


@pytest.mark.parametrize(("walkways", "message"), [
    ([_walkway("main")], "'main' is the pair in capture/endpoints"),
    ([_walkway(), _walkway(port=5721)], "ids must be unique"),
    ([_walkway("bay 2")], "walkway id 'bay 2' must be"),
    ([_walkway(port=5701)], "used twice: tcp://127.0.0.1:5701"),
    ([_walkway(walkway_front=[0.5, 0, 0.4, 1])], "walkway bay2: walkway_front must be"),
    ([{**_walkway(), "colour": "red"}], "walkways[0].colour: unknown key"),
    ([{k: v for k, v in _walkway().items() if k != "side"}], "walkways[0].side: required key is missing"),
])
def test_bad_walkways_are_one_line_errors(walkways, message):
    with pytest.raises(ConfigError) as err:
        from_mapping(DualgaitConfig, {"walkways": walkways})
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_walkway_camera_off_the_host_needs_curve():
    """The extra walkways' endpoints follow the same rule as the main pair's: no plain tcp off the host."""
    from core.security import check_endpoints

    cfg = from_mapping(DualgaitConfig, {"security": {"curve": False},
                                        "walkways": [_walkway(front_endpoint="tcp://10.0.0.7:5711")]})
    with pytest.raises(ConfigError, match=r"walkways\[bay2\]\.front_endpoint \(tcp://10.0.0.7:5711\) is not loopback"):
        check_endpoints(cfg)


def test_one_camera_is_single_view_mode():
    """capture.front or capture.side null: the cameras (views) are the other one; the untrained default model is
    the single-view variant of that view; both null, a model variant that takes other views, or walkways with other
    cameras than walkway main are one-line config errors."""
    cfg = load_config(None, ["capture.front=null"])
    assert cfg.views == cfg.capture.views == ("side",)
    assert cfg.inference.model.for_views(cfg.views).variant == "single_side"
    assert load_config(None, ["capture.side=null"]).inference.model.for_views(("front",)).variant == "single_front"
    assert load_config(None).inference.model.for_views(("front", "side")).variant == "late"
    assert load_config(None, ["capture.front=null", "inference.model.variant=single_side"]).views == ("side",)
    with pytest.raises(ConfigError, match="capture: front and side are both null: at least one camera is needed"):
        load_config(None, ["capture.front=null", "capture.side=null"])
    with pytest.raises(ConfigError, match="variant late takes the front \\+ side view\\(s\\) but the cameras are side"):
        load_config(None, ["capture.front=null", "inference.model.variant=late"])
    with pytest.raises(ConfigError, match="variant single_side takes the side view\\(s\\) but the cameras are front"):
        load_config(None, ["inference.model.variant=single_side"])
    walkway = '[{"id": "bay2", "front": "usb:2", "side": "usb:3", "front_endpoint": "tcp://127.0.0.1:5711", ' \
              '"side_endpoint": "tcp://127.0.0.1:5712"}]'
    with pytest.raises(ConfigError, match=re.escape("walkway bay2 has the front + side camera(s) but walkway main")):
        load_config(None, ["capture.front=null", f"walkways={walkway}"])
    side_only = walkway.replace('"usb:2"', "null")
    one = load_config(None, ["capture.front=null", f"walkways={side_only}"])
    assert one.for_walkway("bay2").views == ("side",)
    with pytest.raises(ConfigError, match=re.escape("capture.front is null: this walkway has no front camera")):
        cfg.capture.source("front")
