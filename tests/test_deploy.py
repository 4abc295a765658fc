"""The several-host deployment of deploy/ (docs/deploy.md) fits together: every systemd unit runs a command the CLI
accepts with the role its host has, every config loads, the GPU hosts' scores endpoints are the aggregator's list
in server-key order, walkway ids are unique across hosts, and deploy/keys.sh, run against one temporary folder per
host, leaves exactly the key files deploy/hosts.yaml lists, with which the hosts' real CURVE handshakes succeed
(on 127.0.0.1: the real addresses are not this machine's). Nothing here starts systemd, PostgreSQL or a GPU."""

from __future__ import annotations

import configparser
import shlex
import shutil
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
import zmq

from aggregator.process import ScoreSources
from core.security import Curve, is_loopback, scores_names
from core.transport import pub_socket
from dualgait.cli import get_args_parser, main
from dualgait.config import DualgaitConfig, load_config

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
MANIFEST = yaml.safe_load((DEPLOY / "hosts.yaml").read_text())
INSTALL, HOSTS = MANIFEST["install"], MANIFEST["hosts"]
ROLES = {"inference": ("capture", "inference"), "aggregator": ("aggregator",)}
GPU_HOSTS = [name for name, host in HOSTS.items() if host["role"] == "inference"]
AGGREGATOR = next(name for name, host in HOSTS.items() if host["role"] == "aggregator")


def _config(name: str, *overrides: str) -> DualgaitConfig:
    return load_config(DEPLOY / HOSTS[name]["config"], list(overrides))


def _unit(path: Path) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # systemd keys are case-sensitive
    unit.read_string(path.read_text())
    return unit


def _host_of(endpoint: str) -> str:
    return endpoint.removeprefix("tcp://").rsplit(":", 1)[0]


def test_every_unit_runs_its_hosts_role_through_the_cli_parser():
    parser = get_args_parser()
    for name, host in HOSTS.items():
        assert host["role"] in ROLES, name
        for unit_file in host["units"]:
            unit = _unit(DEPLOY / unit_file)
            service = unit["Service"]
            assert service["User"] == INSTALL["user"] and service["Restart"] == "on-failure"
            argv = shlex.split(service["ExecStart"])
            assert argv[0] == f"{INSTALL['prefix']}/.venv/bin/dualgait", unit_file
            args = parser.parse_args(argv[1:])  # SystemExit on anything the CLI does not take
            assert args.command == "run" and tuple(args.only) == ROLES[host["role"]], unit_file
            assert args.config == INSTALL["config"], unit_file
            if host["role"] == "aggregator":  # its database is on the same host and starts first
                assert "postgresql.service" in unit["Unit"]["After"].split()
                assert "postgresql.service" in unit["Unit"]["Wants"].split()


def test_configs_load_and_agree_across_hosts():
    configs = {name: _config(name) for name in HOSTS}
    for name, cfg in configs.items():
        assert cfg.security.keys_dir == INSTALL["keys_dir"] and cfg.security.mode == "auto", name
    walkways = [w for name in GPU_HOSTS for w in configs[name].walkway_ids()]
    assert len(walkways) == len(set(walkways)) == 4, walkways  # unique across the hosts of one aggregator
    for name in GPU_HOSTS:
        cfg = configs[name]
        assert isinstance(cfg.endpoints.scores, str) and _host_of(cfg.endpoints.scores) == HOSTS[name]["address"]
        cameras = [cfg.endpoints.front, cfg.endpoints.side, *(e for w in cfg.walkways
                                                               for e in (w.front_endpoint, w.side_endpoint))]
        assert all(is_loopback(e) for e in cameras), cameras  # frames never leave a GPU host
        assert cfg.inference.model.device == "cuda"
    agg = configs[AGGREGATOR]
    assert agg.endpoints.scores_list == [configs[name].endpoints.scores for name in GPU_HOSTS]
    assert agg.security.server_keys == {f"scores.{i}": f"{name}.key" for i, name in enumerate(GPU_HOSTS)}
    assert is_loopback(agg.aggregator.publish_endpoint) and agg.aggregator.http.host == "127.0.0.1"
    url = urlsplit(agg.aggregator.store.url)
    assert url.scheme == "postgresql" and url.username == INSTALL["user"]  # peer authentication: the OS user
    database = url.path.lstrip("/")
    doc = (REPO / "docs" / "deploy.md").read_text()
    assert f"createuser {INSTALL['user']}" in doc and f"createdb --owner {INSTALL['user']} {database}" in doc
    for path in ("deploy/hosts.yaml", "deploy/keys.sh", *(f"deploy/{HOSTS[n]['config']}" for n in HOSTS),
                 *{f"deploy/{u}" for n in HOSTS for u in HOSTS[n]["units"]}):
        assert path in doc, f"docs/deploy.md does not mention {path}"


def _run_keys_script(root: Path) -> None:
    """deploy/keys.sh with each host's file system under root/<host>: ``ssh HOST dualgait keys ...`` runs the CLI
    there, ``scp -3 A:PATH B:PATH`` copies between them."""
    def local(host: str, path: str) -> str:
        assert host in HOSTS, host
        return str(root / host / path.lstrip("/"))

    steps = 0
    for line in (DEPLOY / "keys.sh").read_text().splitlines():
        words = shlex.split(line, comments=True)
        if not words or words[0] == "set":
            continue
        if words[0] == "ssh":
            host, program, *args = words[1:]
            assert program == f"{INSTALL['prefix']}/.venv/bin/dualgait" and args[0] == "keys", line
            assert main([a if not a.startswith("/") else local(host, a) for a in args]) == 0, line
        else:
            assert words[:2] == ["scp", "-3"], line
            (src_host, src), (dst_host, dst) = (w.split(":", 1) for w in words[2:])
            Path(local(dst_host, dst)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(local(src_host, src), local(dst_host, dst))
        steps += 1
    assert steps >= 3 * len(HOSTS)


def test_keys_script_leaves_the_documented_layout_and_the_hosts_handshake(tmp_path):
    _run_keys_script(tmp_path)
    keys_dirs = {name: tmp_path / name / INSTALL["keys_dir"].lstrip("/") for name in HOSTS}
    for name, folder in keys_dirs.items():
        files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        assert files == sorted(HOSTS[name]["keys"]), name
        assert (folder / "host.key_secret").stat().st_mode & 0o077 == 0  # the secret stays private
    # each process of each host finds every key its real config needs (a ConfigError otherwise)
    for name in HOSTS:
        cfg = _config(name, f"security.keys_dir={keys_dirs[name]}")
        if HOSTS[name]["role"] == "inference":
            cameras = ("front", "side", *(f"{w.id}.{v}" for w in cfg.walkways for v in ("front", "side")))
            curve = Curve.for_process(cfg, binds=("scores",), connects=cameras)
        else:
            curve = Curve.for_process(cfg, binds=("publish",), connects=tuple(scores_names(cfg)))
        assert curve is not None and curve.mode == "auto", name  # the scores endpoints leave the host
        curve.close()
    # the real handshakes: each GPU host's key pair serving scores, the aggregator with its server keys in order
    contexts = {name: zmq.Context() for name in HOSTS}
    curves: list[Curve] = []
    try:
        endpoints = []
        for name in GPU_HOSTS:
            cfg = _config(name, f"security.keys_dir={keys_dirs[name]}", "security.curve=true",
                          "endpoints.scores=tcp://127.0.0.1:*")
            curves.append(Curve.for_process(cfg, binds=("scores",)))
            pub = pub_socket(contexts[name], "tcp://127.0.0.1:*", hwm=100, curve=curves[-1])
            endpoints.append((pub, pub.getsockopt_string(zmq.LAST_ENDPOINT)))
        cfg = _config(AGGREGATOR, f"security.keys_dir={keys_dirs[AGGREGATOR]}", "security.curve=true",
                      f"endpoints.scores=[{', '.join(e for _, e in endpoints)}]")
        curves.append(Curve.for_process(cfg, connects=tuple(scores_names(cfg))))
        sources = ScoreSources(contexts[AGGREGATOR], cfg.endpoints.scores_list, hwm=100, curve=curves[-1])
        heard: set[str] = set()
        deadline = time.monotonic() + 10
        while len(heard) < len(endpoints) and time.monotonic() < deadline:
            for pub, _ in endpoints:
                pub.send_multipart([b"not a message: its arrival is enough"])
            list(sources.poll(50))  # malformed: counted per endpoint's receiver
            heard |= {e for e, r in sources.receivers.items() if r.malformed}
        assert heard == {e for _, e in endpoints}
    finally:
        for curve in curves:
            curve.close()
        for ctx in contexts.values():
            ctx.destroy(linger=0)


@pytest.mark.parametrize("role", sorted(ROLES))
def test_run_only_takes_the_units_components_and_refuses_others(role, capsys):
    assert tuple(get_args_parser().parse_args(["run", "--only", ",".join(ROLES[role])]).only) == ROLES[role]
    with pytest.raises(SystemExit):
        get_args_parser().parse_args(["run", "--only", f"{ROLES[role][0]},gpu"])
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.endswith("argument --only: unknown component gpu: give a comma-separated list of aggregator, "
                          "inference, capture")
