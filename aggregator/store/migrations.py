"""The session database's schema, for both backends, as one ordered list of steps.

Step *n* brings a database from version *n - 1* to version *n*, in one transaction together with the new
``meta.schema_version``: a new database runs every step (version 0 is "no tables yet"), an old one the steps it
lacks, and a crash mid-step leaves the previous version. Each step holds its SQL per dialect (``sqlite``,
``postgres``); the difference is the column types (PostgreSQL: BIGINT nanoseconds, BOOLEAN flags, JSON
documents kept as written). Writers migrate (under their single-writer lock, so two aggregators never migrate
at once); readers only read the versions in :data:`READABLE_VERSIONS`.

To change the schema: append a step, raise :data:`SCHEMA_VERSION`, and make the readers in ``base.py`` accept the
new version (and the old ones while such databases may still be read without a writer).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Literal, Protocol

Dialect = Literal["sqlite", "postgres"]

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)  # 1: before walkways (migrated by a writer, read as walkway 'main')


@dataclass(frozen=True, slots=True)
class Step:
    version: int                      # the version this step brings the database to
    what: str
    sqlite: tuple[str, ...]
    postgres: tuple[str, ...]

    def statements(self, dialect: Dialect) -> tuple[str, ...]:
        return self.sqlite if dialect == "sqlite" else self.postgres


def _v1(dialect: Dialect) -> tuple[str, ...]:
    big, real, flag, doc = (("INTEGER", "REAL", "INTEGER", "TEXT") if dialect == "sqlite"
                            else ("BIGINT", "DOUBLE PRECISION", "BOOLEAN", "JSON"))
    return (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        f"""CREATE TABLE sessions (
            id {big} PRIMARY KEY, stream TEXT NOT NULL, walk INTEGER,
            status TEXT NOT NULL CHECK (status IN ('open', 'closed')), started_wall_ns {big} NOT NULL,
            ended_wall_ns {big}, end_reason TEXT, t0_mono_ns {big} NOT NULL, last_seen_mono_ns {big} NOT NULL,
            windows INTEGER NOT NULL, valid_windows INTEGER NOT NULL, cumulative_p_asd {real}, ci_low {real},
            ci_high {real}, decision TEXT NOT NULL, model TEXT NOT NULL, untrained {flag} NOT NULL,
            synthetic {flag} NOT NULL, summary_json {doc} NOT NULL)""",
        f"""CREATE TABLE windows (
            session_id {big} NOT NULL REFERENCES sessions(id), idx INTEGER NOT NULL, stream TEXT NOT NULL,
            "window" INTEGER NOT NULL, t_s {real} NOT NULL, t_start_wall_ns {big} NOT NULL, valid {flag} NOT NULL,
            reason_code TEXT, p_asd {real}, record_json {doc} NOT NULL, PRIMARY KEY (session_id, idx))""",
        "CREATE INDEX sessions_status ON sessions(status)",
    )


# sessions of a version-1 database belong to the default walkway (core.messages.DEFAULT_WALKWAY)
_WALKWAY = "ALTER TABLE sessions ADD COLUMN walkway TEXT NOT NULL DEFAULT 'main'"

STEPS: tuple[Step, ...] = (
    Step(1, "sessions and windows", _v1("sqlite"), _v1("postgres")),
    Step(2, "sessions.walkway (the camera pair; each walkway has at most one open session)", (_WALKWAY,),
         (_WALKWAY,)),
)
assert [s.version for s in STEPS] == list(range(1, SCHEMA_VERSION + 1))


class Target(Protocol):
    """What :func:`migrate` needs of a writable connection."""

    dialect: Dialect

    def execute(self, sql: str, params: tuple = ()) -> None: ...

    def transaction(self) -> AbstractContextManager[None]: ...


def set_version_sql(dialect: Dialect) -> str:
    p = "?" if dialect == "sqlite" else "%s"
    return (f"INSERT INTO meta (key, value) VALUES ('schema_version', {p}) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value")


def migrate(target: Target, version: int, *, to: int = SCHEMA_VERSION,
            on_step: Callable[[Step], None] | None = None) -> int:
    """Run the steps after ``version`` up to ``to``; returns the version reached."""
    for step in STEPS:
        if version < step.version <= to:
            with target.transaction():
                for sql in step.statements(target.dialect):
                    target.execute(sql)
                target.execute(set_version_sql(target.dialect), (str(step.version),))
            if on_step is not None:
                on_step(step)
            version = step.version
    return version
