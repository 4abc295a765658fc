"""The supervisor's policy with fake children and a fake clock; the process-event message; resumed replays;
children dying with a ``kill -9``-ed supervisor (real processes, no models)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.configtools import ConfigError, from_mapping
from core.messages import MessageError, ProcessEvent, decode, encode_process_event
from dualgait.launcher import resume_position
from dualgait.supervisor import ChildSpec, GaveUp, Supervisor, SupervisorConfig


class FakeProc:
    _next_pid = 1000

    def __init__(self, argv: list[str], *, ignores_sigterm: bool = False) -> None:
        FakeProc._next_pid += 1
        self.pid, self.argv, self.returncode = FakeProc._next_pid, argv, None
        self.ignores_sigterm = ignores_sigterm
        self.signals: list[int] = []

    def poll(self) -> int | None:
        return self.returncode

    def wait(self) -> int | None:
        return self.returncode

    def send_signal(self, sig: int) -> None:
        self.signals.append(sig)
        if not self.ignores_sigterm:
            self.returncode = 0

    def kill(self) -> None:
        self.signals.append(signal.SIGKILL)
        self.returncode = -signal.SIGKILL


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, dt: float) -> None:
        self.t += dt


def _supervisor(cfg: SupervisorConfig, names=("a", "b"), *, ignores_sigterm=False, command=None):
    clock = Clock()
    procs: dict[str, list[FakeProc]] = {n: [] for n in names}

    def spawn(argv: list[str]) -> FakeProc:
        proc = FakeProc(argv, ignores_sigterm=ignores_sigterm)
        procs[argv[0]].append(proc)
        return proc

    specs = [ChildSpec(n, command or (lambda restarts, n=n: [n, str(restarts)])) for n in names]
    published: list[ProcessEvent] = []
    sup = Supervisor(cfg, specs, spawn=spawn, publish=published.append, clock=clock, wall_ns=lambda: 1,
                     sleep=clock.sleep, rng=random.Random(0))
    return sup, clock, procs, published


def test_a_crashed_child_is_restarted_with_exponential_jittered_backoff_capped_at_the_maximum():
    cfg = SupervisorConfig(initial_backoff_s=1.0, max_backoff_s=5.0, backoff_jitter_frac=0.2, max_restarts=10,
                           restart_window_s=1000.0)
    sup, clock, procs, published = _supervisor(cfg)
    sup.start()
    delays = []
    for n in range(1, 6):
        procs["a"][-1].returncode = -9  # kill -9
        sup.poll()
        crash = published[-1]
        assert (crash.process, crash.event, crash.exit_code) == ("a", "crashed", -9)
        assert "killed by SIGKILL" in crash.reason
        delays.append(crash.backoff_s)
        clock.t += crash.backoff_s - 0.01
        sup.poll()
        assert len(procs["a"]) == n  # not yet
        clock.t += 0.02
        sup.poll()
        assert len(procs["a"]) == n + 1 and procs["a"][-1].argv == ["a", str(n)]
        assert published[-1].event == "started" and published[-1].restarts == n
        assert published[-1].pid == procs["a"][-1].pid
    nominal = [1.0, 2.0, 4.0, 5.0, 5.0]
    for delay, base in zip(delays, nominal, strict=True):
        assert base * 0.8 <= delay <= base * 1.2
    assert len(set(delays)) == len(delays)  # jittered
    assert procs["b"][0].returncode is None and len(procs["b"]) == 1  # the other child untouched


def test_crash_loop_gives_up_and_stops_everything():
    cfg = SupervisorConfig(initial_backoff_s=0.1, max_backoff_s=0.1, max_restarts=2, restart_window_s=60.0)
    sup, clock, procs, published = _supervisor(cfg)
    sup.start()
    for _ in range(2):
        procs["a"][-1].returncode = 1
        sup.poll()
        clock.t += 0.2
        sup.poll()
    procs["a"][-1].returncode = 1
    with pytest.raises(GaveUp, match="3 crashes within 60 s"):
        sup.poll()
    assert [e.event for e in published if e.process == "a"][-2:] == ["crashed", "gave_up"]
    assert procs["b"][0].signals == [signal.SIGTERM]  # the rest stopped
    assert published[-1].event == "stopped" and published[-1].process == "b"
    assert sup.failure is not None and "max_restarts 2" in sup.failure


def test_old_crashes_leave_the_window_so_a_long_lived_child_is_not_given_up():
    cfg = SupervisorConfig(initial_backoff_s=0.1, max_backoff_s=10.0, max_restarts=1, restart_window_s=60.0,
                           backoff_jitter_frac=0.0)
    sup, clock, procs, published = _supervisor(cfg)
    sup.start()
    for _ in range(3):  # one crash per 100 s: never more than 1 in the window, backoff back at its start
        procs["a"][-1].returncode = 1
        sup.poll()
        assert published[-1].backoff_s == pytest.approx(0.1)
        clock.t += 100.0
        sup.poll()
    assert len(procs["a"]) == 4 and sup.failure is None


@pytest.mark.parametrize(("cfg", "code", "why"), [
    (SupervisorConfig(), 2, "start error"),
    (SupervisorConfig(restart=False), -9, "restart is off"),
])
def test_fatal_exit_code_or_restart_off_gives_up_at_once(cfg, code, why):
    sup, _clock, procs, _published = _supervisor(cfg)
    sup.start()
    procs["a"][0].returncode = code
    with pytest.raises(GaveUp, match=why):
        sup.poll()
    assert len(procs["a"]) == 1


def test_clean_exit_is_an_end_not_a_crash_and_nothing_left_to_run_ends_the_child():
    sup, _clock, procs, published = _supervisor(SupervisorConfig())
    sup.start()
    procs["a"][0].returncode = 0
    sup.poll()
    assert not sup.all_ended and published[-1].event == "ended"
    procs["b"][0].returncode = 0
    sup.poll()
    assert sup.all_ended and len(procs["a"]) == 1
    # a restart with nothing left to play (the replay is over) ends the child instead of starting it
    sup, clock, procs, published = _supervisor(SupervisorConfig(backoff_jitter_frac=0.0), names=("a",),
                                               command=lambda restarts: None if restarts else ["a"])
    sup.start()
    procs["a"][0].returncode = -9
    sup.poll()
    clock.t += 1.0
    sup.poll()
    assert sup.all_ended and published[-1].event == "ended" and published[-1].reason == "nothing left to run"


def test_stop_sends_sigterm_then_sigkill_after_the_grace_period():
    sup, clock, procs, published = _supervisor(SupervisorConfig(stop_grace_s=2.0), ignores_sigterm=True)
    sup.start()
    sup.stop()
    for name in ("a", "b"):
        assert procs[name][0].signals == [signal.SIGTERM, signal.SIGKILL]
    assert 2.0 <= clock.t < 2.2
    stopped = [e for e in published if e.event == "stopped"]
    assert [e.exit_code for e in stopped] == [-9, -9] and "SIGKILL" in stopped[0].reason


def test_stop_goes_stage_by_stage_upstream_first():
    clock = Clock()
    order: list[str] = []

    class Recording(FakeProc):
        def send_signal(self, sig: int) -> None:
            order.append(self.argv[0])
            super().send_signal(sig)

    specs = [ChildSpec(n, lambda restarts, n=n: [n]) for n in ("agg", "inf", "cap1", "cap2")]
    sup = Supervisor(SupervisorConfig(), specs, spawn=Recording, clock=clock, sleep=clock.sleep,
                     stop_order=[["cap1", "cap2"], ["inf"], ["agg"]])
    sup.start()
    sup.stop()
    assert order == ["cap1", "cap2", "inf", "agg"]
    assert [e.event for e in sup.events][-4:] == ["stopped"] * 4


def test_config_section_is_strict():
    with pytest.raises(ConfigError, match="restarts_max: unknown key"):
        from_mapping(SupervisorConfig, {"restarts_max": 3})
    with pytest.raises(ConfigError, match="initial_backoff_s <= max_backoff_s"):
        from_mapping(SupervisorConfig, {"initial_backoff_s": 10.0, "max_backoff_s": 1.0})
    with pytest.raises(ConfigError, match="must be loopback"):
        from_mapping(SupervisorConfig, {"event_endpoint": "tcp://0.0.0.0:5705"})
    assert from_mapping(SupervisorConfig, {"event_endpoint": "ipc:///tmp/x.sock"}).event_endpoint == "ipc:///tmp/x.sock"


def test_process_event_round_trip_and_validation():
    event = ProcessEvent(process="capture-front", event="crashed", pid=123, exit_code=-9, restarts=1,
                         backoff_s=0.52, reason="killed by SIGKILL; restart in 0.52 s", mono_ns=5, wall_ns=6)
    assert decode(encode_process_event(event)) == event
    header = json.loads(encode_process_event(event)[0])
    for key, value, match in (("event", "exploded", "not one of"), ("exit_code", 0, "non-zero exit_code"),
                              ("pid", 0, "out of range"), ("process", "", "1..64"), ("backoff_s", -1, "range"),
                              ("restarts", True, "bool")):
        bad = dict(header, **{key: value})
        with pytest.raises(MessageError, match=match):
            decode([json.dumps(bad).encode()])
    with pytest.raises(MessageError, match="no payload"):
        decode([encode_process_event(event)[0], b"x"])


@pytest.mark.parametrize(("kwargs", "expected"), [
    # a single pass resumes at the current position (shift = elapsed, offset grows with it)
    (dict(elapsed_s=4.0, speed=1.0, base_offset_s=0.0, duration_s=15.2, loop=False, max_duration_s=None),
     (4.0, 4.0, None)),
    (dict(elapsed_s=4.0, speed=2.0, base_offset_s=1.0, duration_s=15.2, loop=False, max_duration_s=10.0),
     (4.0, 9.0, 6.0)),
    # looped: the start of the next pass (pass = duration - offset), on the shared timeline
    (dict(elapsed_s=20.0, speed=1.0, base_offset_s=0.0, duration_s=15.0, loop=True, max_duration_s=600.0),
     (30.0, 0.0, 570.0)),
    (dict(elapsed_s=20.0, speed=1.0, base_offset_s=5.0, duration_s=15.0, loop=True, max_duration_s=None),
     (20.0, 5.0, None)),
    # nothing left: the file is over, or max_duration_s is reached before the next pass
    (dict(elapsed_s=16.0, speed=1.0, base_offset_s=0.0, duration_s=15.2, loop=False, max_duration_s=None), None),
    (dict(elapsed_s=20.0, speed=1.0, base_offset_s=0.0, duration_s=15.0, loop=True, max_duration_s=25.0), None),
])
def test_resume_position_keeps_the_shared_timeline(kwargs, expected):
    got = resume_position(**kwargs)
    assert got == (None if expected is None else pytest.approx(expected))


_ORPHAN_SCRIPT = """
import sys, time
from dualgait.launcher import spawn
children = [spawn([sys.executable, "-c", "import time; time.sleep(120)"]) for _ in range(3)]
print(" ".join(str(c.pid) for c in children), flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[1][0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_children_die_when_the_supervisor_is_killed_9(tmp_path: Path):
    parent = subprocess.Popen([sys.executable, "-c", _ORPHAN_SCRIPT], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).parents[2])
    try:
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 3 and all(_alive(p) for p in pids)
        for pid in pids:  # own session: a Ctrl-C in the terminal reaches only the supervisor
            assert os.getsid(pid) == pid
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 5.0
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(p) for p in pids), "children outlived a kill -9 of their supervisor"
    finally:
        parent.kill()
        for pid in pids if "pids" in locals() else []:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_soak_rss_summary_judges_after_warm_up_on_minute_medians():
    from bench.soak import rss_summary

    flat = [(t, 100.0 + (50.0 if t < 60 else 0.0) + (5.0 if t == 300 else 0.0)) for t in range(0, 601, 5)]
    r = rss_summary(flat, warmup_s=60)
    assert (r["first_mb"], r["last_mb"], r["growth_pct"]) == (100.0, 100.0, 0.0)  # warm-up and one spike ignored
    assert r["max_growth_pct"] == 5.0
    leak = [(t, 100.0 + t / 10) for t in range(0, 601, 5)]  # +6 MB/min
    r = rss_summary(leak, warmup_s=60)
    assert r["growth_pct"] > 40
    assert rss_summary([(0, 1.0)], warmup_s=60)["growth_pct"] is None


def test_bench_soak_bad_arguments_are_one_line_errors(tmp_path, capsys):
    from dualgait.cli import main

    video = tmp_path / "v.mp4"
    video.write_bytes(b"")
    args = ["bench", "soak", "--output", str(tmp_path / "s.json"), "--front", str(video), "--side", str(video),
            "--set", f"inference.detector.weights={tmp_path}"]
    assert main([*args, "--duration-s", "100", "--warmup-s", "60"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["dualgait bench: error: --duration-s must be at least twice --warmup-s, and --sample-s > 0"]
    assert main(["bench", "soak", "--output", str(tmp_path / "s.json"), "--front", str(tmp_path / "no.mp4")]) == 2
    assert "front video not found" in capsys.readouterr().err
