"""Writes to a database that may be away: an ordered, bounded queue in memory and one writer thread.

The aggregator's loop hands each write (a window with its session's summary, or a session row) to
:meth:`PendingWrites.put`. While the database is up, ``put`` waits for the write's commit (at most
``write_wait_s``), so a committed window is in the database before the next message is read, as with SQLite:
a ``kill -9`` loses at most the window in flight. When a write fails for a reason that can pass (the
connection is lost, the server restarts or is unreachable, the pool has no connection), the database counts as
away: ``put`` only queues (it never waits), and the writer retries with a growing pause (``RETRY_MIN_S`` doubling
up to ``RETRY_MAX_S``), then writes everything queued, oldest first, each write in its own transaction. Writes
are upserts (see base.py), so a write retried after its commit was already done replaces itself: nothing doubles.

At most ``max_pending_windows`` windows wait; one more drops the oldest waiting window (``dropped_windows``;
its session's row is still brought up to date by the later writes of that session, which carry the summary).
A write the database refuses for its data (``DataError``, ``IntegrityError``: it would fail forever) is logged and
dropped. What is still queued when the process ends or is killed is lost: the queue lives in memory only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

RETRY_MIN_S = 0.1
RETRY_MAX_S = 5.0
BURST = 200          # writes per connection checkout while catching up (reads get the connection in between)
DROP_LOG_EVERY = 100


@dataclass(slots=True)
class Write:
    seq: int
    window: bool                            # a window (counted, may be dropped) or a session row (never dropped)
    statements: tuple[tuple[str, tuple], ...]


class PendingWrites:
    """``connection()``: a context manager giving a connection (the pool's), or raising ``transient``.

    ``transient``: exceptions after which the database counts as away (the write is kept and retried);
    ``refused``: exceptions the database raises for the data itself (the write is dropped).
    """

    def __init__(self, connection: Callable[[], AbstractContextManager[Any]], *, where: str,
                 max_pending_windows: int, write_wait_s: float, transient: tuple[type[BaseException], ...],
                 refused: tuple[type[BaseException], ...], why_away: Callable[[], str | None] = lambda: None) -> None:
        self._connection = connection
        self.where = where
        self.max_pending_windows = max_pending_windows
        self.write_wait_s = write_wait_s
        self._transient, self._refused = transient, refused
        self._why_away = why_away                 # a reason the caller knows better (e.g. the lock is taken)
        self._cond = threading.Condition()
        self._queue: deque[Write] = deque()
        self._next_seq = 1
        self._done_seq = 0                        # every write up to this one is done (committed or dropped)
        self._in_flight = 0                       # the seq being written (never dropped from the queue)
        self._windows = 0                         # windows in the queue
        self.dropped_windows = 0
        self.up = True
        self._away_since: float | None = None
        self._closing = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
        self._thread.start()

    @property
    def pending_windows(self) -> int:
        return self._windows

    # ------------------------------------------------------------------ the aggregator's thread

    def put(self, statements: Sequence[tuple[str, tuple]], *, window: bool) -> None:
        with self._cond:
            if self._closing:
                raise RuntimeError("the store is closed")
            write = Write(self._next_seq, window, tuple(statements))
            self._next_seq += 1
            if window and self._windows >= self.max_pending_windows and not self._drop_oldest_window():
                self._dropped(1)  # every waiting window is in flight: this one goes
                return
            self._queue.append(write)
            self._windows += window
            self._cond.notify_all()
            if self.up and not self._cond.wait_for(lambda: self._done_seq >= write.seq or not self.up,
                                                   timeout=self.write_wait_s):
                self.up = False  # no commit in time: queue from now on, until the writer has caught up
                self._away_since = time.monotonic()
                log.warning("session database %s: no commit within %.1f s; windows are queued in memory until it "
                            "answers (up to %d)", self.where, self.write_wait_s, self.max_pending_windows)

    def _drop_oldest_window(self) -> bool:
        for i, queued in enumerate(self._queue):
            if queued.window and queued.seq != self._in_flight:
                del self._queue[i]
                self._windows -= 1
                self._dropped(1)
                return True
        return False

    def _dropped(self, n: int) -> None:
        self.dropped_windows += n
        if self.dropped_windows == n or self.dropped_windows // DROP_LOG_EVERY > (self.dropped_windows - n) \
                // DROP_LOG_EVERY:
            log.error("session database %s away: pending queue full (%d windows), %d window(s) dropped so far",
                      self.where, self.max_pending_windows, self.dropped_windows)

    def flush(self, timeout_s: float) -> bool:
        """Wait until the queue is empty (at most ``timeout_s``); True when it is."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue, timeout=timeout_s)

    def close(self, timeout_s: float) -> int:
        """Write what is queued (while the database answers, at most ``timeout_s``), stop; returns windows lost."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout=timeout_s)
        self._stop.set()  # a pause between retries ends now: one last try, then give up
        self._thread.join(timeout=timeout_s)
        with self._cond:
            lost = self._windows
        if lost:
            log.error("session database %s away at shutdown: %d queued window(s) not stored", self.where, lost)
        return lost

    # ------------------------------------------------------------------ the writer thread

    def _next(self) -> Write | None:
        with self._cond:
            if not self._queue:
                return None
            self._in_flight = self._queue[0].seq
            return self._queue[0]

    def _done(self, write: Write) -> None:
        with self._cond:
            head = self._queue.popleft()
            assert head is write  # only the writer takes from the head; drops skip the write in flight
            self._windows -= write.window
            self._done_seq = write.seq
            self._in_flight = 0
            if not self._queue and not self.up:
                self.up = True
                away_s = time.monotonic() - (self._away_since or time.monotonic())
                log.warning("session database %s is back after %.1f s: every queued write is stored (%d window(s) "
                            "dropped so far)", self.where, away_s, self.dropped_windows)
            self._cond.notify_all()

    def _write_some(self) -> None:
        """Write from the head of the queue on one connection, up to BURST writes."""
        with self._connection() as conn:
            for _ in range(BURST):
                write = self._next()
                if write is None:
                    return
                try:
                    with conn.transaction():
                        for sql, params in write.statements:
                            conn.execute(sql, params)
                except self._refused as exc:
                    log.error("session database %s refused a %s, dropped: %s", self.where,
                              "window" if write.window else "session row", str(exc).strip().splitlines()[0])
                    with self._cond:
                        self.dropped_windows += write.window
                self._done(write)

    def _run(self) -> None:
        delay_s = RETRY_MIN_S
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._closing)
                if not self._queue:
                    return  # closing, nothing left
            try:
                self._write_some()
                delay_s = RETRY_MIN_S
            except self._transient as exc:
                with self._cond:
                    self._in_flight = 0
                    if self.up:
                        self.up = False
                        self._away_since = time.monotonic()
                        text = str(exc).strip()
                        reason = self._why_away() or (text.splitlines()[0] if text else type(exc).__name__)
                        log.warning("session database %s away (%s): windows are queued in memory (up to %d) and "
                                    "written when it is back", self.where, reason, self.max_pending_windows)
                    self._cond.notify_all()
                    closing = self._closing
                if closing and self._stop.is_set():
                    return  # given up: close() reports what is lost
                self._stop.wait(delay_s)
                delay_s = min(delay_s * 2, RETRY_MAX_S)
            except Exception:  # a bug, not the database: never spin on it
                log.exception("session database %s: write failed, dropped", self.where)
                write = self._next()
                if write is not None:
                    with self._cond:
                        self.dropped_windows += write.window
                    self._done(write)
