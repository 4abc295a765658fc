"""``dualgait session list|end|export``: the operator's and the researcher's commands on walk sessions."""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime
from urllib.parse import urlencode

from aggregator.config import AggregatorConfig
from aggregator.session_export import FORMATS, export_session
from aggregator.store import SessionStore, StoreError, open_store
from aggregator.web import OPERATOR_HEADER
from core.messages import DEFAULT_WALKWAY, check_walkway_id


def add_session_args(parser: argparse.ArgumentParser,
                     common: Callable[[argparse.ArgumentParser], None]) -> None:
    """``common`` adds --config, --set and --log-level to each subcommand."""
    sub = parser.add_subparsers(dest="session_command", required=True)
    listing = sub.add_parser("list", help="the stored walk sessions, newest first")
    listing.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    export = sub.add_parser("export", help="write a session as CSV, JSON and a PNG plot of its score timeline")
    export.add_argument("session_id", type=int)
    export.add_argument("--output", default=".", help="folder for session-<id>.csv/.json/.png (default: here)")
    export.add_argument("--format", dest="formats", default=",".join(FORMATS),
                        help=f"comma-separated, from {', '.join(FORMATS)} (default: all)")
    end = sub.add_parser("end", help="end the open walk session of a walkway of the running aggregator "
                         "(operator command)")
    end.add_argument("--url", help="the aggregator's live view (default: from aggregator.http in the config)")
    end.add_argument("--walkway", metavar="ID", type=_walkway_arg,
                     help="the walkway (camera pair) whose session to end (default: the only one with an open "
                          "session)")
    for p in (listing, export, end):
        common(p)


def _walkway_arg(value: str) -> str:
    try:
        return check_walkway_id(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _db(cfg: AggregatorConfig) -> SessionStore:
    return open_store(cfg.store, read_only=True)  # StoreError for a null url too


def _time(wall_ns: int | None) -> str:
    return datetime.fromtimestamp(wall_ns / 1e9).strftime("%Y-%m-%d %H:%M:%S") if wall_ns else "-"


def _p(value: float | None) -> str:
    return "  -  " if value is None else f"{value:.3f}"


def run_session_command(args: argparse.Namespace, cfg: AggregatorConfig) -> int:
    if args.session_command == "end":
        return _end(args, cfg)
    store = _db(cfg)
    try:
        if args.session_command == "list":
            sessions = store.list_sessions(args.limit)
            if not sessions:
                print(f"no sessions in {store.where}")
            for s in sessions:
                ci = f"[{_p(s['ci_low'])}-{_p(s['ci_high'])}]" if s["ci_low"] is not None else "[  -  ]"
                model = " untrained" if s["untrained"] else " synthetic-model" if s["synthetic"] else ""
                print(f"{s['id']:5d}  {_time(s['started_wall_ns'])}  {s['walkway']:12s} {s['status']:6s} "
                      f"{(s['end_reason'] or ''):13s} {s['valid_windows']:4d}/{s['windows']:<4d} valid  "
                      f"p_asd {_p(s['cumulative_p_asd'])} {ci}  {s['decision']}{model}")
            return 0
        formats = [f.strip() for f in args.formats.split(",") if f.strip()]
        unknown = [f for f in formats if f not in FORMATS]
        if unknown or not formats:
            choices = ", ".join(FORMATS)
            raise StoreError(f"unknown export format {', '.join(unknown) or '(none)'}: choose from {choices}")
        for path in export_session(store, args.session_id, args.output, formats):
            print(f"wrote {path}")
        return 0
    finally:
        store.close()


def _end(args: argparse.Namespace, cfg: AggregatorConfig) -> int:
    host = "127.0.0.1" if cfg.http.host in ("0.0.0.0", "") else cfg.http.host
    url = (args.url or f"http://{host}:{cfg.http.port}/").rstrip("/") + "/api/session/end"
    query = f"?{urlencode({'walkway': args.walkway})}" if args.walkway else ""
    request = urllib.request.Request(url + query, data=b"{}", method="POST",
                                     headers={OPERATOR_HEADER: "1", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5.0) as response:
            result = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 409:  # several walkways have an open session: the aggregator's answer lists them
            raise OSError(_error_of(exc) or f"the aggregator at {url} refused: HTTP 409") from None
        raise OSError(f"the aggregator at {url} refused: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise OSError(f"cannot reach the aggregator at {url}: {reason}") from None
    walkway = result.get("walkway") or args.walkway
    on = f" (walkway {walkway})" if walkway not in (None, DEFAULT_WALKWAY) else ""
    if result.get("ended") is None:
        print(f"no open session{on}")
    else:
        print(f"ended session {result['ended']}{on}")
    return 0


def _error_of(exc: urllib.error.HTTPError) -> str | None:
    """The ``error`` of a JSON error answer (one line), if it has one."""
    try:
        error = json.loads(exc.read()).get("error")
    except (ValueError, AttributeError, OSError):
        return None
    return " ".join(str(error).split()) if error else None
