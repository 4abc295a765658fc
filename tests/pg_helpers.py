"""A real PostgreSQL server for the store tests (fixtures exported by tests/conftest.py).

``pg_url`` (one per test session): ``$DUALGAIT_TEST_PG_URL`` when set (``.ci/run`` starts a throw-away cluster and
sets it), else a throw-away cluster started here (``bench.pg_cluster``: initdb + pg_ctl in a temporary folder,
a free port, its unix socket in that folder, stopped at the end) when the server binaries exist, else the test is
skipped with the reason (failed under CI). ``pg_schema_url``: a fresh schema per test on that server, the URL
with ``search_path`` set to it, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from bench.pg_cluster import ClusterUnavailable, PgCluster

URL_ENV = "DUALGAIT_TEST_PG_URL"


def no_server(reason: str) -> None:
    """Skip (fail under CI, where .ci/run provides the server)."""
    message = f"no PostgreSQL server for the store tests: {reason}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def with_search_path(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


def own_cluster() -> PgCluster:
    """A private throw-away cluster (started), or a skip with the reason."""
    try:
        return PgCluster().start()
    except ClusterUnavailable as exc:
        no_server(str(exc))
        raise  # not reached


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    url = os.environ.get(URL_ENV)
    if url:
        yield url
        return
    cluster = own_cluster()
    try:
        yield cluster.socket_url
    finally:
        cluster.destroy()


@pytest.fixture
def pg_schema_url(pg_url: str) -> Iterator[str]:
    import psycopg

    schema = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield with_search_path(pg_url, schema)
    with psycopg.connect(pg_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
