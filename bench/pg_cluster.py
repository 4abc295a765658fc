"""A throw-away PostgreSQL cluster (``initdb`` + ``pg_ctl`` in a temporary folder, a free port on 127.0.0.1 and a
unix socket in that folder), for ``dualgait bench store``, the store tests and ``.ci/run``. Standard library
only: ``.ci/run`` runs it with the system Python before any venv exists.

``initdb`` and ``postgres`` refuse to run as root: as root the server runs as the ``postgres`` system user
(Debian's ``postgresql`` package creates it) through ``runuser``, and the folder is handed to that user.
Trust authentication, listening on loopback only: never a server for real data.

    python3 -m bench.pg_cluster start DIR     # prints the URL (postgresql://dualgait@127.0.0.1:PORT/postgres)
    python3 -m bench.pg_cluster stop DIR      # stops it and removes DIR
"""

from __future__ import annotations

import argparse
import glob
import logging
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

SUPERUSER = "dualgait"
SERVICE_USER = "postgres"  # who runs the server when we are root
# no durability and nothing slow for the tests' cluster; a --durable one (the bench) keeps the server's defaults
FAST_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")


class ClusterUnavailable(RuntimeError):
    """No PostgreSQL server binaries here, or no user that may run them (one line)."""


def find_pg_bin() -> Path | None:
    """The folder with ``initdb`` and ``pg_ctl``: on PATH, else Debian's /usr/lib/postgresql/<newest>/bin."""
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                      key=lambda p: int(Path(p).parents[1].name) if Path(p).parents[1].name.isdigit() else 0)
    for initdb in reversed(versions):
        if (Path(initdb).parent / "pg_ctl").exists():
            return Path(initdb).parent
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgCluster:
    """One cluster in ``root`` (a new temporary folder when None): :meth:`start`, :meth:`stop`, :meth:`destroy`."""

    def __init__(self, root: str | Path | None = None, *, durable: bool = False, port: int | None = None) -> None:
        self.bin_dir = find_pg_bin()
        if self.bin_dir is None:
            raise ClusterUnavailable("PostgreSQL server binaries (initdb, pg_ctl) not found: install Debian's "
                                     "postgresql package")
        self.run_as: list[str] = []
        self.uid: int | None = None
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam(SERVICE_USER)
            except KeyError:
                raise ClusterUnavailable(f"running as root, and initdb refuses root: there is no {SERVICE_USER!r} "
                                         "user to run the server (install Debian's postgresql package)") from None
            self.run_as, self.uid = ["runuser", "-u", SERVICE_USER, "--"], user.pw_uid
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="dualgait-pg-"))
        self.data = self.root / "data"
        self.durable = durable
        self.port = port or free_port()
        self.running = False

    @property
    def url(self) -> str:
        """Over TCP on loopback, as a store on another host is reached."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"

    @property
    def socket_url(self) -> str:
        """Over the unix socket in the cluster's folder."""
        return f"postgresql://{SUPERUSER}@/postgres?host={self.root}&port={self.port}"

    def _run(self, *args: str) -> None:
        command = [*self.run_as, str(self.bin_dir / args[0]), *args[1:]]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
            raise ClusterUnavailable(f"{args[0]} failed ({done.returncode}): {tail}")

    def init(self) -> PgCluster:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.uid is not None:
            os.chown(self.root, self.uid, -1)
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--locale=C",
                  *(() if self.durable else ("--no-sync",)))
        return self

    def start(self) -> PgCluster:
        """Start the server (``initdb`` first when the folder has no cluster); waits until it accepts connections."""
        if not (self.data / "PG_VERSION").exists():
            self.init()
        settings = [f"-p {self.port}", f"-k {self.root}", "-c listen_addresses=127.0.0.1",
                    *(() if self.durable else (f"-c {s}" for s in FAST_SETTINGS))]
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", " ".join(settings),
                  "-w", "-t", "60", "start")
        self.running = True
        return self

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m MODE`` (fast: connections are closed, what is committed stays)."""
        if self.running:
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")
            self.running = False

    def destroy(self) -> None:
        """Stop at once and remove the folder."""
        try:
            self.stop("immediate")
        except ClusterUnavailable as exc:
            log.warning("%s", exc)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PgCluster:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.destroy()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bench.pg_cluster", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("dir", help="the cluster's folder (created by start, removed by stop)")
    args = parser.parse_args(argv)
    try:
        if args.action == "start":
            cluster = PgCluster(args.dir).start()
            (cluster.root / "port").write_text(str(cluster.port))
            print(cluster.url)
        else:
            cluster = PgCluster(args.dir, port=int((Path(args.dir) / "port").read_text()))
            cluster.running = (cluster.data / "postmaster.pid").exists()
            cluster.destroy()
    except (ClusterUnavailable, OSError) as exc:
        print(f"pg_cluster: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
