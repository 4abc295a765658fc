"""Fixtures of the aggregator tests."""

from __future__ import annotations

import pytest
import zmq


@pytest.fixture
def scores_pub(tmp_path):
    """The inference side: a PUB bound where the aggregator of write_config() subscribes."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.bind(f"ipc://{tmp_path}/scores.sock")
    yield sock
    ctx.destroy(linger=0)
