"""Keeps a running replica's index in step with writes other processes make.

A :class:`ChangeFollower` thread calls :meth:`GalleryKeeper.catch_up` every ``poll_s`` seconds
and, on PostgreSQL, as soon as a writer's ``NOTIFY`` arrives on :data:`CHANGE_CHANNEL` (sent
at commit by ``enrollment/changes.py``), so a change made by one replica (or by a CLI command)
is searchable on the others within milliseconds, or within ``poll_s`` when notices are lost
(the listening connection dropped: it is reopened at the next turn). Errors are logged and
retried on the next turn; the follower never stops the service.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

from sqlalchemy import Engine

from wajah.enrollment.changes import CHANGE_CHANNEL
from wajah.enrollment.gallery import GalleryKeeper
from wajah.enrollment.structured_log import log_event

__all__ = ["ChangeFollower"]

logger = logging.getLogger("wajah.replication")


class ChangeFollower:
    """A daemon thread applying the change log to ``gallery``. ``start``/``stop`` from one
    thread (the service's start-up and shutdown)."""

    def __init__(self, gallery: GalleryKeeper, engine: Engine, poll_s: float) -> None:
        if poll_s <= 0:
            raise ValueError("poll_s must be positive")
        self._gallery = gallery
        self._engine = engine
        self._poll_s = poll_s
        self._listen = engine.dialect.name == "postgresql"
        self._listener: Any = None  # a psycopg connection LISTENing on CHANGE_CHANNEL
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wajah-change-follower", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=self._poll_s + 5.0)
        self._close_listener()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._gallery.catch_up()
            except Exception as error:  # the database is away: retry on the next turn
                log_event(
                    logger, "catch_up_failed", level=logging.WARNING, error=type(error).__name__
                )
            self._wait()

    def _wait(self) -> None:
        """Until a change notice arrives, ``poll_s`` passes, or the follower stops."""
        if not self._listen:
            self._stopping.wait(self._poll_s)
            return
        started = time.monotonic()
        try:
            listener = self._open_listener()
            for _ in listener.notifies(timeout=self._poll_s, stop_after=1):
                pass
        except Exception as error:
            log_event(logger, "listen_failed", level=logging.WARNING, error=type(error).__name__)
            self._close_listener()
            self._stopping.wait(max(0.0, self._poll_s - (time.monotonic() - started)))

    def _open_listener(self) -> Any:
        if self._listener is None:
            pooled = self._engine.raw_connection()
            connection = pooled.driver_connection
            pooled.detach()  # its own connection, never handed back to the pool LISTENing
            if connection is None:
                raise RuntimeError("the pool gave no driver connection to LISTEN on")
            connection.autocommit = True
            connection.execute(f"LISTEN {CHANGE_CHANNEL}")
            self._listener = connection
        return self._listener

    def _close_listener(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                self._listener.close()
            self._listener = None
