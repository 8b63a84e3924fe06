"""Keeps the in-memory gallery index in step with the record database.

The database is the source of truth. The index file is a cache of it with a checkpoint (the
highest template id it holds). On start the file is loaded and reconciled with the database:
templates the database holds and the index does not (written after the checkpoint, or
committed out of id order by concurrent writers) are added, templates the index holds and the
database no longer does (erased subjects) are removed. A missing, corrupt, other-model or
other-structure file is rebuilt from the database. Saving is atomic (matcher.persistence).

The file is sealed with the records cipher (matcher.persistence, chunked AES-256-GCM), so the
templates are encrypted at rest there as they are in the database. An unsealed file (format 1,
or written by a tool without the key) is refused and rebuilt, never trusted. After a subject
is erased the file is saved at once (:meth:`GalleryKeeper.note_erasure`), so the erased
template does not wait for the next periodic save to leave it.

Replicas: several processes (``wajah serve`` replicas, the CLI) may write one database. Every
template added or removed is logged in the same transaction (``enrollment/changes.py``);
:meth:`GalleryKeeper.catch_up` applies the log after the last change this index applied, and
the service calls it around its own writes (so its own and everyone else's changes reach the
index by one path) and a follower thread calls it on a short poll or a PostgreSQL NOTIFY
(``enrollment/replication.py``). The file records the last applied change (``change_seq``),
read before the snapshot, so a saved file never claims a change it does not hold. The log is
pruned (``changes.prune_changes``); a replica that finds changes it had not applied pruned
away reconciles its index with the database instead of replaying the rest.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wajah.enrollment.changes import TemplateChangeOperation
from wajah.enrollment.records import StoredTemplate
from wajah.enrollment.store import RecordStore
from wajah.enrollment.structured_log import log_event
from wajah.matcher.errors import IndexFileError
from wajah.matcher.index import Candidate, GalleryIndex, IndexConfig, IndexStats
from wajah.matcher.persistence import PayloadCipher, load_index, save_index, saved_change_seq

logger = logging.getLogger("wajah.gallery")

Progress = Callable[[int, int], None]  # (templates done, templates in all)

SAVE_EVERY_WRITES = 1_000  # save the index after this many writes since the last save ...
SAVE_EVERY_S = 300.0  # ... or after this long with unsaved writes (replay covers the gap)
CATCH_UP_BATCH = 10_000  # change-log rows read per query when catching up


@dataclass(frozen=True)
class GalleryOpenReport:
    loaded_from_file: bool
    rebuilt_reason: str | None  # why the file was not used, when it was not
    added_on_replay: int
    removed_on_replay: int
    templates: int
    elapsed_ms: float
    change_seq: int = 0  # the last logged template change the index has applied


def rebuild_index(
    store: RecordStore, config: IndexConfig, model_tag: str, progress: Progress | None = None
) -> GalleryIndex:
    """A fresh index holding every template of ``model_tag`` in the database. Read in batches,
    an "ivfpq" index retrains its lists as it grows (at each 4x) and once more at the end, so
    they fit the whole gallery (seconds at a million templates)."""
    index = GalleryIndex(config, model_tag=model_tag)
    total = store.count_templates(model_tag)
    done = 0
    if progress:
        progress(0, total)
    for batch in store.iter_templates(model_tag):
        index.add(batch.template_ids, batch.subject_ids, batch.vectors, model_tag=model_tag)
        done += len(batch.template_ids)
        if progress:
            progress(done, total)
    if config.kind == "ivfpq" and index.stats().approximate_active:
        index.rebuild()
    return index


def reconcile(index: GalleryIndex, store: RecordStore) -> tuple[int, int]:
    """Make the index hold exactly the database's templates, each under the subject the
    database gives it; returns (added, removed). A template that changed subject (a merge
    not yet saved in the index file) counts as removed and added."""
    database_ids, database_owners = store.template_owners(index.model_tag)
    index_ids, index_owners = index.template_owners()
    common, in_database, in_index = np.intersect1d(
        database_ids, index_ids, assume_unique=True, return_indices=True
    )
    moved = common[database_owners[in_database] != index_owners[in_index]]
    extra = np.union1d(np.setdiff1d(index_ids, database_ids, assume_unique=True), moved)
    missing = np.union1d(np.setdiff1d(database_ids, index_ids, assume_unique=True), moved)
    if extra.size:
        index.remove_templates(extra)
    added = 0
    if missing.size:
        # Keyset scan from just below the smallest missing id: usually only the tail.
        for batch in store.iter_templates(index.model_tag, after_id=int(missing.min()) - 1):
            keep = np.isin(batch.template_ids, missing, assume_unique=True)
            if keep.any():
                index.add(
                    batch.template_ids[keep],
                    batch.subject_ids[keep],
                    batch.vectors[keep],
                    model_tag=index.model_tag,
                )
                added += int(keep.sum())
    return added, int(extra.size)


class GalleryKeeper:
    """Owns the index of a running service: opening, searching, writes, periodic atomic saves,
    shutdown save. The index itself stays inside: callers add, remove, identify, score and read
    stats through the keeper, so a rebuild can swap the index under them. Thread-safe; callers
    serialise their own database-then-index writes.

    ``cipher`` seals the index file; pass the store's records cipher. It is required (not
    optional) so that no service can write its templates to disk in plaintext by omission.
    """

    def __init__(
        self,
        store: RecordStore,
        index_path: Path,
        config: IndexConfig,
        model_tag: str,
        *,
        cipher: PayloadCipher,
    ) -> None:
        self._store = store
        self.index_path = index_path
        self.config = config
        self.model_tag = model_tag
        self._cipher = cipher
        self._index = GalleryIndex(config, model_tag=model_tag)
        self._unsaved_writes = 0
        self._last_save = time.monotonic()
        self._save_lock = threading.Lock()
        # Serialises what changes the index's membership: catch-ups and direct writes.
        self._apply_lock = threading.RLock()
        self._applied_seq = 0

    @property
    def applied_change_seq(self) -> int:
        """The last logged template change this index has applied."""
        return self._applied_seq

    def open(self, progress: Progress | None = None) -> GalleryOpenReport:
        start = time.perf_counter()
        reason: str | None = None
        # Read before the index is reconciled: a change committed meanwhile is replayed again
        # (applying a change twice is harmless), never skipped.
        database_seq = self._store.last_template_change()
        file_seq = saved_change_seq(self.index_path)
        if file_seq is not None and file_seq > database_seq:
            # A file from another database, or from before a restore: reconcile trusts the
            # database either way.
            log_event(
                logger,
                "index_file_ahead_of_database",
                level=logging.WARNING,
                file_change_seq=file_seq,
                database_change_seq=database_seq,
            )
        try:
            index = load_index(self.index_path, self.model_tag, self.config, self._cipher)
        except IndexFileError as error:
            reason = f"{type(error).__name__}: {error}"
            log_event(logger, "index_rebuild", level=logging.WARNING, reason=type(error).__name__)
            index = rebuild_index(self._store, self.config, self.model_tag, progress)
            added, removed = 0, 0
            self._index = index
            self.save()
        else:
            added, removed = reconcile(index, self._store)
            self._index = index
            if added or removed:
                self.save()
        self._applied_seq = database_seq
        return GalleryOpenReport(
            loaded_from_file=reason is None,
            rebuilt_reason=reason,
            added_on_replay=added,
            removed_on_replay=removed,
            templates=len(self._index),
            elapsed_ms=(time.perf_counter() - start) * 1000.0,
            change_seq=database_seq,
        )

    def rebuild(self, progress: Progress | None = None) -> int:
        with self._apply_lock:
            database_seq = self._store.last_template_change()
            index = rebuild_index(self._store, self.config, self.model_tag, progress)
            self._index = index
            self._applied_seq = database_seq
        self.save()
        return len(index)

    # -- the change log -------------------------------------------------------------------------

    def catch_up(self) -> int:
        """Apply the logged template changes after the last one applied (other replicas' and
        this process's own writes alike); returns how many changes were read. Within each
        batch only a template's last change counts: an add indexes the template as the
        database holds it now (under its current subject: a merge is a remove then an add),
        or drops it when the database no longer has it; a remove drops it.

        The log has no gaps, so the changes after ``n`` are numbered ``n + 1, n + 2, …`` up to
        the head. When they are not (pruned while this replica was behind: see
        ``changes.prune_changes``), the index is reconciled with the templates table, the
        source of truth, instead of replaying what is left."""
        read = 0
        with self._apply_lock:
            while True:
                # The head is read before the rows: every change up to it was committed
                # before the rows are read, so a missing one was pruned, not in flight.
                head = self._store.last_template_change()
                changes = self._store.template_changes_after(self._applied_seq, CATCH_UP_BATCH)
                first_expected = self._applied_seq + 1
                if head >= first_expected and (
                    not changes
                    or changes[0].seq != first_expected
                    or changes[-1].seq != first_expected + len(changes) - 1
                ):
                    read += self._resync_after_gap(first_expected)
                    continue  # then replay whatever was committed after the resync began
                if not changes:
                    break
                latest: dict[int, TemplateChangeOperation] = {}
                for change in changes:
                    latest[change.template_id] = change.operation
                added = [t for t, op in latest.items() if op is TemplateChangeOperation.ADD]
                removed = [t for t, op in latest.items() if op is TemplateChangeOperation.REMOVE]
                writes = 0
                if removed:
                    writes += self._index.remove_templates(np.array(removed, dtype=np.int64))
                if added:
                    writes += self._index_as_stored(np.array(added, dtype=np.int64))
                self._applied_seq = changes[-1].seq
                read += len(changes)
                if writes:
                    self._unsaved_writes += writes
                if len(changes) < CATCH_UP_BATCH:
                    break
        if read:
            log_event(logger, "index_caught_up", changes=read, change_seq=self._applied_seq)
        return read

    def _resync_after_gap(self, missing_seq: int) -> int:
        """Make the index hold exactly the database's templates (the changes from
        ``missing_seq`` on are no longer in the log) and carry on from the head read first:
        a change committed during the reconcile is replayed after it (harmlessly twice).
        Returns how many changes the reconcile stood in for."""
        started = time.perf_counter()
        head = self._store.last_template_change()
        added, removed = reconcile(self._index, self._store)
        covered = max(0, head - self._applied_seq)
        self._applied_seq = head
        self._unsaved_writes += added + removed
        log_event(
            logger,
            "index_resynced_after_log_gap",
            level=logging.WARNING,
            missing_change_seq=missing_seq,
            change_seq=head,
            added=added,
            removed=removed,
            elapsed_ms=round((time.perf_counter() - started) * 1000.0, 1),
        )
        return covered

    def _index_as_stored(self, template_ids: np.ndarray) -> int:
        """Make the index hold these templates exactly as the database does (absent if it no
        longer has them); returns how many index entries changed."""
        batch = self._store.templates_by_id(template_ids, self.model_tag)
        stored = dict(zip(batch.template_ids.tolist(), batch.subject_ids.tolist(), strict=True))
        indexed_of_subject: dict[int, set[int]] = {}
        stale = []
        for template_id in template_ids.tolist():
            if not self._index.contains(template_id):
                continue
            subject_id = stored.get(template_id)
            if subject_id is not None and subject_id not in indexed_of_subject:
                indexed_of_subject[subject_id] = set(
                    self._index.templates_of_subject(subject_id).tolist()
                )
            if subject_id is None or template_id not in indexed_of_subject[subject_id]:
                stale.append(template_id)
        changed = self._index.remove_templates(np.array(stale, dtype=np.int64)) if stale else 0
        keep = np.array(
            [not self._index.contains(template_id) for template_id in batch.template_ids.tolist()],
            dtype=bool,
        )
        if keep.any():
            self._index.add(
                batch.template_ids[keep],
                batch.subject_ids[keep],
                batch.vectors[keep],
                model_tag=self.model_tag,
            )
            changed += int(keep.sum())
        return changed

    # -- the index, behind the keeper ---------------------------------------------------------

    def add(self, templates: Sequence[StoredTemplate]) -> None:
        """Index stored templates (just committed, or re-linked by a merge); templates the
        index already holds (applied by a catch-up) are left as they are."""
        if not templates:
            return
        (model_tag,) = {stored.model_tag for stored in templates}
        with self._apply_lock:
            new = [stored for stored in templates if not self._index.contains(stored.template_id)]
            if not new:
                return
            self._index.add(
                np.array([stored.template_id for stored in new], dtype=np.int64),
                np.array([stored.subject_id for stored in new], dtype=np.int64),
                np.stack([stored.vector for stored in new]),
                model_tag=model_tag,
            )

    def remove_templates(self, template_ids: np.ndarray) -> int:
        """Drop templates by id, (N,) int64; returns how many the index held."""
        with self._apply_lock:
            return self._index.remove_templates(template_ids)

    def remove_subject(self, subject_id: int) -> int:
        """Drop every template of a subject; returns how many."""
        with self._apply_lock:
            return self._index.remove_subject(subject_id)

    def identify(
        self,
        query: np.ndarray,
        k: int,
        threshold: float | None = None,
        *,
        model_tag: str | None = None,
    ) -> list[Candidate]:
        """Top-k subjects for one (128,) float32 query, best first (``GalleryIndex.identify``).
        ``model_tag`` is the probe's (default: the gallery's); the index refuses a mismatch."""
        return self._index.identify(query, k, threshold, model_tag=model_tag or self.model_tag)

    def subject_scores(
        self, query: np.ndarray, subject_id: int, *, model_tag: str | None = None
    ) -> np.ndarray:
        """Exact scores (M,) float32 of one query against each of the subject's templates."""
        return self._index.subject_scores(query, subject_id, model_tag=model_tag or self.model_tag)

    def stats(self) -> IndexStats:
        return self._index.stats()

    def __len__(self) -> int:
        return len(self._index)

    def template_ids(self) -> np.ndarray:
        """Ids of the indexed templates, (N,) int64."""
        return self._index.template_ids()

    def template_owners(self) -> tuple[np.ndarray, np.ndarray]:
        """(template ids (N,) int64, their subject ids (N,) int64), as indexed."""
        return self._index.template_owners()

    def templates_of_subject(self, subject_id: int) -> np.ndarray:
        """Ids of the subject's indexed templates, (M,) int64 ascending."""
        return self._index.templates_of_subject(subject_id)

    def note_writes(self, count: int = 1) -> None:
        """Record index writes; saves when enough have piled up or enough time has passed."""
        self._unsaved_writes += count
        if (
            self._unsaved_writes >= SAVE_EVERY_WRITES
            or time.monotonic() - self._last_save >= SAVE_EVERY_S
        ):
            self.save()

    def note_erasure(self) -> None:
        """Save now, after a subject's templates were removed from the index, so the erased
        templates leave the index file at once instead of at the next periodic save. Costs a
        full save (seconds for millions of templates); erasures are rare."""
        self.save()

    def save(self) -> None:
        with self._save_lock:
            # Read before the snapshot: the file may hold changes after it (replayed again,
            # harmlessly), never claim one it lacks.
            applied = self._applied_seq
            save_index(self._index, self.index_path, self._cipher, change_seq=applied)
            self._unsaved_writes = 0
            self._last_save = time.monotonic()

    def close(self) -> None:
        if self._unsaved_writes:
            self.save()
