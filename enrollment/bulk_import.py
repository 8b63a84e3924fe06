"""Bulk import of a legacy photo archive: many photos through the face workers, one subject each.

Two layouts are read:

* **Folder layout** — ``DIR/<subject_ref>/<photo>.jpg``: one folder per subject; the folder name
  is the subject reference and, unless a manifest gives one, the full name is the folder name
  with ``_`` read as a space (``George_W_Bush`` -> ``George W Bush``).
* **CSV manifest** — UTF-8, a header row, one row per photo. Columns:

  ==================  ========  ====================================================
  ``path``            required  the photo; relative paths are relative to the base
                                directory (the import's DIR, else the manifest's folder)
  ``subject_id``      required  the subject reference (``subject_ref``)
  ``full_name``       optional  defaults to ``subject_id`` with ``_`` read as a space
  ``date_of_birth``   optional  ISO date, ``YYYY-MM-DD``
  ``nationality``     optional  ISO 3166-1 alpha-3 code
  ``document_number`` optional
  ==================  ========  ====================================================

  Several rows may name the same subject (several photos); they must agree on the identity
  columns (or leave them empty after the first).

The pipeline (:func:`run_import`): the calling thread reads each file, hashes it and submits it
to the service's :class:`~wajah.biometric.pool.EnginePool`, keeping at most ``max_pending`` photos in
flight so the workers never wait; as results complete, the same thread creates the subject if it
is missing and calls :meth:`IdentityService.enroll_processed`, with the ``scan`` quality profile
by default (legacy scans are small; the scan profile records their quality and flags weak
components, and still refuses no face, several faces or an unusable face).

Crash safety and resume: the database commit inside ``enroll_processed`` is the acknowledgement.
Only after it returns is a photo *done* (and reported to ``on_done``, e.g. a done-log line). A
photo whose SHA-256 the store already holds is skipped, so an interrupted import restarted on
the same input completes the rest without duplicates.

Nothing here logs a name, a document number, an image or a template; the report holds paths,
subject references, outcomes, quality component names and scores.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Final

from wajah.biometric.datasets import IMAGE_SUFFIXES
from wajah.biometric.engine import ProcessedImage
from wajah.biometric.errors import EngineOverloaded, ImageRefused, WajahInputError
from wajah.biometric.quality import PROFILES, QualityProfile
from wajah.enrollment.errors import SubjectNotFound
from wajah.enrollment.records import CaptureSource
from wajah.enrollment.service import EnrollmentOutcome, EnrollmentStatus, IdentityService
from wajah.enrollment.structured_log import log_event
from wajah.matcher.atomic_files import atomic_write

__all__ = [
    "MANIFEST_COLUMNS",
    "ImportItem",
    "ImportOutcome",
    "ImportResult",
    "ImportRow",
    "ImportSummary",
    "ManifestError",
    "default_report_path",
    "items_from_folders",
    "items_from_manifest",
    "run_import",
    "write_report",
]

logger = logging.getLogger("wajah.import")

IMPORT_STATION: Final = "import"
MANIFEST_COLUMNS: Final = (
    "path",
    "subject_id",
    "full_name",
    "date_of_birth",
    "nationality",
    "document_number",
)
REQUIRED_MANIFEST_COLUMNS: Final = ("path", "subject_id")
REPORT_COLUMNS: Final = (
    "path",
    "subject_id",
    "outcome",
    "reasons",
    "candidates",
    "score",
    "detail",
)
OVERLOAD_BACKOFF_S: Final = 0.01  # the pool frees a slot a moment after a future completes

_UNREADABLE_ERRORS: Final = (ImageRefused, OSError)


class ManifestError(WajahInputError):
    """The import's input is unusable as a whole: a missing folder, an unreadable or malformed
    manifest. (A single bad photo is a row of the report, not this error.)"""


class ImportOutcome(StrEnum):
    ENROLLED = "enrolled"  # stored, the subject is searchable
    REFUSED = "refused"  # quality gate said no (no face, several faces, unusable face)
    PENDING_REVIEW = "pending_review"  # stored, looks like another subject: supervisor
    UNREADABLE = "unreadable"  # not a readable image (missing file, not an image, truncated)
    SKIPPED_ALREADY_IMPORTED = "skipped_already_imported"  # the store holds this exact file
    ERROR = "error"  # anything else, e.g. identity data the store refuses; see ``detail``


STORED_OUTCOMES: Final = frozenset({ImportOutcome.ENROLLED, ImportOutcome.PENDING_REVIEW})


@dataclass(frozen=True)
class ImportItem:
    """One photo to import and the identity of its subject. Identity fields stay out of repr."""

    path: Path
    subject_ref: str
    full_name: str = field(repr=False)
    date_of_birth: str | None = field(default=None, repr=False)
    nationality: str | None = None
    document_number: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ImportRow:
    """What happened to one photo (a row of the report)."""

    path: Path
    subject_id: str  # the subject reference
    outcome: ImportOutcome
    reasons: tuple[str, ...] = ()  # quality components: failing (refused) or flagged (stored)
    candidates: tuple[tuple[str, float], ...] = ()  # (subject_ref, similarity), pending_review
    score: float | None = None  # best candidate similarity, pending_review
    detail: str = ""  # error class and message for unreadable / error
    image_sha256: str = ""

    @property
    def stored(self) -> bool:
        return self.outcome in STORED_OUTCOMES


@dataclass(frozen=True)
class ImportSummary:
    total: int
    counts: dict[str, int]  # per ImportOutcome value, every value present
    elapsed_s: float
    photos_per_s: float  # photos that went through the face workers (not skipped), per second
    workers: int
    profile: str

    def to_dict(self) -> dict[str, object]:
        return {
            "total": self.total,
            "counts": dict(self.counts),
            "elapsed_s": round(self.elapsed_s, 3),
            "photos_per_s": round(self.photos_per_s, 3),
            "workers": self.workers,
            "profile": self.profile,
        }


@dataclass(frozen=True)
class ImportResult:
    rows: tuple[ImportRow, ...]  # in input order
    summary: ImportSummary


RowCallback = Callable[[ImportRow], None]
Progress = Callable[[int, int], None]  # (photos done, photos in all)


# -- reading the input -------------------------------------------------------------------------


def name_from_ref(subject_ref: str) -> str:
    return subject_ref.replace("_", " ").strip() or subject_ref


def items_from_folders(directory: Path) -> list[ImportItem]:
    """The folder layout: every image of every sub-folder, sorted by folder then file."""
    if not directory.is_dir():
        raise ManifestError(f"not a directory: {directory}")
    items: list[ImportItem] = []
    for subject_dir in sorted(p for p in directory.iterdir() if p.is_dir()):
        for path in sorted(subject_dir.iterdir()):
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
                ref = subject_dir.name
                items.append(ImportItem(path, ref, name_from_ref(ref)))
    if not items:
        raise ManifestError(f"no photos found in sub-folders of {directory}")
    return items


def items_from_manifest(manifest: Path, base_dir: Path | None = None) -> list[ImportItem]:
    """The CSV layout (columns in the module docstring); rows in file order."""
    base = base_dir if base_dir is not None else manifest.parent
    try:
        with manifest.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = [name.strip() for name in reader.fieldnames or []]
            missing = [name for name in REQUIRED_MANIFEST_COLUMNS if name not in columns]
            if missing:
                raise ManifestError(
                    f"{manifest}: missing column(s) {', '.join(missing)}; "
                    f"expected {', '.join(MANIFEST_COLUMNS)}"
                )
            rows = list(reader)
    except OSError as error:
        raise ManifestError(f"cannot read manifest {manifest}: {error.strerror}") from None
    except (UnicodeDecodeError, csv.Error) as error:
        raise ManifestError(f"{manifest}: not a readable CSV file: {error}") from None
    items: list[ImportItem] = []
    identities: dict[str, tuple[str, str | None, str | None, str | None]] = {}
    for line, raw in enumerate(rows, start=2):
        row = {
            (key or "").strip(): (value or "").strip()
            for key, value in raw.items()
            if isinstance(value, str)
        }
        path_text, ref = row.get("path", ""), row.get("subject_id", "")
        if not path_text or not ref:
            raise ManifestError(f"{manifest}:{line}: path and subject_id are required")
        given = (
            row.get("full_name", ""),
            row.get("date_of_birth") or None,
            row.get("nationality") or None,
            row.get("document_number") or None,
        )
        known = identities.get(ref)
        if known is None:
            identities[ref] = known = (given[0] or name_from_ref(ref), *given[1:])
        elif any(value and value != old for value, old in zip(given, known, strict=True)):
            raise ManifestError(
                f"{manifest}:{line}: identity columns disagree with an earlier row of the "
                "same subject_id"
            )
        path = Path(path_text)
        items.append(ImportItem(path if path.is_absolute() else base / path, ref, *known))
    if not items:
        raise ManifestError(f"{manifest}: no rows")
    return items


def default_report_path(data_dir: Path, now: dt.datetime | None = None) -> Path:
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
    return data_dir / "imports" / f"import-{stamp}.csv"


# -- the pipeline ------------------------------------------------------------------------------


@dataclass
class _Job:
    position: int
    item: ImportItem
    image: bytes
    digest: str
    submitted_at: float


def run_import(
    service: IdentityService,
    items: Sequence[ImportItem],
    *,
    profile: str | QualityProfile = "scan",
    on_done: RowCallback | None = None,
    progress: Progress | None = None,
    keep_image: bool = True,
) -> ImportResult:
    """Import ``items`` through ``service`` (module docstring). Single-threaded on the caller's
    side: every database write happens in the calling thread, face work in the pool's workers.

    ``on_done(row)`` is called once per photo, right after its outcome is final (for a stored
    photo: after the database commit); ``progress(done, total)`` after each photo.
    A photo whose face worker dies is reported as ``error`` (the pool replaces the worker and
    the import goes on; running the import again retries it).
    """
    if isinstance(profile, str) and profile not in PROFILES:
        raise ValueError(f"unknown quality profile {profile!r}; one of {', '.join(PROFILES)}")
    quality_profile = PROFILES[profile] if isinstance(profile, str) else profile
    pool_config = service.face_pool_config
    window = max(1, pool_config.max_pending)
    total = len(items)
    rows: list[ImportRow | None] = [None] * total
    seen_digests: set[str] = set()
    in_flight: dict[Future[ProcessedImage], _Job] = {}
    done_count = 0
    processed_count = 0
    start = time.perf_counter()

    def finish(position: int, row: ImportRow) -> None:
        nonlocal done_count
        rows[position] = row
        done_count += 1
        if on_done is not None:
            on_done(row)
        if progress is not None:
            progress(done_count, total)

    pending_jobs = _read_jobs(items, service, seen_digests, finish)
    blocked: _Job | None = None
    try:
        while True:
            # Fill the window. A job the pool refused (someone else's requests share it) waits
            # in ``blocked`` for the next round.
            while len(in_flight) < window:
                job = blocked if blocked is not None else next(pending_jobs, None)
                blocked = None
                if job is None:
                    break
                try:
                    future = service.submit_face_work(job.image, quality_profile)
                except EngineOverloaded:
                    blocked = job
                    break
                in_flight[future] = job
            if not in_flight:
                if blocked is None:
                    break
                time.sleep(OVERLOAD_BACKOFF_S)
                continue
            completed, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in sorted(completed, key=lambda f: in_flight[f].position):
                job = in_flight.pop(future)
                processed_count += 1
                finish(job.position, _enroll_one(service, job, future, keep_image))
            if blocked is not None and not completed:
                time.sleep(OVERLOAD_BACKOFF_S)
    finally:
        for future in in_flight:
            future.cancel()
    elapsed = time.perf_counter() - start
    final_rows = tuple(row for row in rows if row is not None)
    counts = Counter(row.outcome.value for row in final_rows)
    summary = ImportSummary(
        total=total,
        counts={outcome.value: counts.get(outcome.value, 0) for outcome in ImportOutcome},
        elapsed_s=elapsed,
        photos_per_s=processed_count / elapsed if elapsed > 0 else 0.0,
        workers=pool_config.workers,
        profile=quality_profile.name,
    )
    log_event(logger, "import_finished", **dict(sorted(summary.counts.items())))
    return ImportResult(final_rows, summary)


def _read_jobs(
    items: Sequence[ImportItem],
    service: IdentityService,
    seen_digests: set[str],
    finish: Callable[[int, ImportRow], None],
) -> Iterator[_Job]:
    """Read and hash each file; photos that need no face work are finished here."""
    for position, item in enumerate(items):
        try:
            image = item.path.read_bytes()
        except OSError as error:
            finish(
                position,
                ImportRow(
                    item.path,
                    item.subject_ref,
                    ImportOutcome.UNREADABLE,
                    detail=f"{type(error).__name__}: {error.strerror}",
                ),
            )
            continue
        digest = hashlib.sha256(image).hexdigest()
        if digest in seen_digests or service.has_image_sha256(digest) is not None:
            finish(
                position,
                ImportRow(
                    item.path,
                    item.subject_ref,
                    ImportOutcome.SKIPPED_ALREADY_IMPORTED,
                    image_sha256=digest,
                ),
            )
            continue
        seen_digests.add(digest)
        yield _Job(position, item, image, digest, time.perf_counter())


def _enroll_one(
    service: IdentityService, job: _Job, future: Future[ProcessedImage], keep_image: bool
) -> ImportRow:
    item = job.item
    try:
        processed = future.result()
    except _UNREADABLE_ERRORS as error:
        return ImportRow(
            item.path,
            item.subject_ref,
            ImportOutcome.UNREADABLE,
            detail=f"{type(error).__name__}: {error}",
            image_sha256=job.digest,
        )
    except Exception as error:  # one odd photo, or its worker dying, must not stop the import
        return ImportRow(
            item.path,
            item.subject_ref,
            ImportOutcome.ERROR,
            detail=f"{type(error).__name__}: {error}",
            image_sha256=job.digest,
        )
    try:
        _ensure_subject(service, item)
        outcome = service.enroll_processed(
            item.subject_ref,
            processed,
            job.image,
            source=CaptureSource.IMPORT,
            station=IMPORT_STATION,
            keep_image=keep_image,
            face_ms=(time.perf_counter() - job.submitted_at) * 1000.0,
        )
    except WajahInputError as error:  # e.g. identity data the store refuses
        return ImportRow(
            item.path,
            item.subject_ref,
            ImportOutcome.ERROR,
            detail=f"{type(error).__name__}: {error}",
            image_sha256=job.digest,
        )
    return _row_from_outcome(job, outcome)


def _ensure_subject(service: IdentityService, item: ImportItem) -> None:
    try:
        service.get_subject_by_ref(item.subject_ref)
    except SubjectNotFound:
        service.create_subject(
            item.subject_ref,
            item.full_name,
            date_of_birth=item.date_of_birth,
            nationality=item.nationality,
            document_number=item.document_number,
        )


def _row_from_outcome(job: _Job, outcome: EnrollmentOutcome) -> ImportRow:
    quality = outcome.quality
    if outcome.status is EnrollmentStatus.REFUSED:
        reasons = tuple(c.name for c in quality.failing)
        if not reasons:  # usable but no template: cannot happen with embed=True; say so
            reasons = ("no_template",)
        return ImportRow(
            job.item.path,
            job.item.subject_ref,
            ImportOutcome.REFUSED,
            reasons=reasons,
            image_sha256=job.digest,
        )
    flagged = tuple(c.name for c in quality.warnings)
    candidates = tuple((c.subject_ref, c.score) for c in outcome.candidates)
    stored_as = (
        ImportOutcome.PENDING_REVIEW
        if outcome.status is EnrollmentStatus.PENDING_REVIEW
        else ImportOutcome.ENROLLED
    )
    return ImportRow(
        job.item.path,
        job.item.subject_ref,
        stored_as,
        reasons=flagged,
        candidates=candidates,
        score=max((score for _, score in candidates), default=None),
        image_sha256=job.digest,
    )


# -- the report --------------------------------------------------------------------------------


def report_record(row: ImportRow) -> dict[str, str]:
    return {
        "path": str(row.path),
        "subject_id": row.subject_id,
        "outcome": row.outcome.value,
        "reasons": ";".join(row.reasons),
        "candidates": ";".join(f"{ref}:{score:.4f}" for ref, score in row.candidates),
        "score": "" if row.score is None else f"{row.score:.4f}",
        "detail": row.detail,
    }


def write_report(rows: Iterable[ImportRow], path: Path) -> Path:
    """Write the report CSV atomically (temporary file, fsync, rename); returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=REPORT_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow(report_record(row))
    return path
