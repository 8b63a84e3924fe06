"""Keeps a running replica's index in step with writes other processes make.

A :class:`ChangeFollower` thread calls :meth:`GalleryKeeper.catch_up` every ``poll_s`` seconds
and, on PostgreSQL, as soon as a writer's ``NOTIFY`` arrives on :data:`CHANGE_CHANNEL` (sent
at commit by ``enrollment/changes.py``), so a change made by one replica (or by a CLI command)
is searchable on the others within milliseconds, or within ``poll_s`` when notices are lost
(the listening connection dropped: it is reopened at the next turn). Errors are logged and
retried on the next turn; the follower never stops the service.

With a retention given, the follower also prunes the change log of entries older than it, at
start and every ``prune_every_s`` (``changes.prune_changes``). Every replica may prune: pruning
deletes a prefix of the log only, and a replica that had not applied what went reconciles its
index with the database (``GalleryKeeper.catch_up``), so pruning costs a lagging replica time,
never a change.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from typing import Any

from sqlalchemy import Engine

from wajah.enrollment.changes import CHANGE_CHANNEL, prune_changes
from wajah.enrollment.clock import utcnow
from wajah.enrollment.gallery import GalleryKeeper
from wajah.enrollment.structured_log import log_event

__all__ = ["PRUNE_EVERY_S", "ChangeFollower"]

logger = logging.getLogger("wajah.replication")

PRUNE_EVERY_S = 3600.0  # an hour: the log's growth in an hour is small beside its retention


class ChangeFollower:
    """A daemon thread applying the change log to ``gallery``. ``start``/``stop`` from one
    thread (the service's start-up and shutdown)."""

    def __init__(
        self,
        gallery: GalleryKeeper,
        engine: Engine,
        poll_s: float,
        *,
        retention_s: float | None = None,
        prune_every_s: float = PRUNE_EVERY_S,
    ) -> None:
        """``retention_s``: prune changes older than this (None: leave the log alone)."""
        if poll_s <= 0:
            raise ValueError("poll_s must be positive")
        if retention_s is not None and retention_s <= 0:
            raise ValueError("retention_s must be positive")
        if prune_every_s <= 0:
            raise ValueError("prune_every_s must be positive")
        self._gallery = gallery
        self._engine = engine
        self._poll_s = poll_s
        self._retention_s = retention_s
        self._prune_every_s = prune_every_s
        self._next_prune = time.monotonic()
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
            self._prune_when_due()
            self._wait()

    def _prune_when_due(self) -> None:
        if self._retention_s is None or time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + self._prune_every_s
        older_than = utcnow() - dt.timedelta(seconds=self._retention_s)
        try:
            deleted = prune_changes(self._engine, older_than)
        except Exception as error:  # the database is away or busy: the next turn retries
            self._next_prune = time.monotonic() + self._poll_s
            log_event(
                logger, "change_log_prune_failed", level=logging.WARNING, error=type(error).__name__
            )
            return
        if deleted:
            log_event(
                logger,
                "change_log_pruned",
                deleted=deleted,
                older_than=older_than.isoformat(),
            )

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
