"""1:N identification over the gallery, for :class:`~wajah.enrollment.service.IdentityService`:
the search at the threshold for the current gallery size, in investigation or identification
mode (:mod:`wajah.matcher.identification`), and the found candidates described from their
records."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from wajah.biometric.engine import ProcessedImage
from wajah.biometric.errors import NoFaceFound
from wajah.enrollment.gallery import GalleryKeeper
from wajah.enrollment.outcomes import IdentificationOutcome, MatchCandidate, RankedMatch
from wajah.enrollment.records import SubjectStatus
from wajah.enrollment.store import RecordStore
from wajah.enrollment.structured_log import log_event
from wajah.matcher.identification import IdentifyMode, ScoredSubject, identification_result
from wajah.matcher.index import Candidate
from wajah.matcher.thresholds import Thresholds

logger = logging.getLogger("wajah.enrollment")

IDENTIFY_SPARE_CANDIDATES = 5  # searched beyond k, for found subjects that are not active


def describe_candidates(store: RecordStore, found: Sequence[Candidate]) -> list[MatchCandidate]:
    """The index's candidates with their subjects' references and statuses."""
    described = []
    for candidate in found:
        record = store.get_subject(candidate.subject_id)
        described.append(
            MatchCandidate(
                record.id,
                record.subject_ref,
                round(float(candidate.score), 6),
                str(record.status),
            )
        )
    return described


def identify_processed(
    store: RecordStore,
    gallery: GalleryKeeper,
    thresholds: Thresholds,
    processed: ProcessedImage,
    face_ms: float,
    k: int,
    mode: IdentifyMode,
    fpir: float | None,
) -> IdentificationOutcome:
    """The search half of :meth:`IdentityService.identify`, once the face work is done."""
    if processed.template is None:
        raise NoFaceFound("no face found in the probe image")
    start = time.perf_counter()
    gallery_size = gallery.stats().subjects
    point = thresholds.identification_point(gallery_size, fpir)
    # A few extra: subjects pending review or erased are found but not shown.
    found = gallery.identify(
        processed.template.vector,
        k + IDENTIFY_SPARE_CANDIDATES,
        None if mode is IdentifyMode.INVESTIGATION else point.threshold,
        model_tag=processed.template.model_tag,
    )
    described = [c for c in describe_candidates(store, found) if c.status == SubjectStatus.ACTIVE][
        :k
    ]
    result = identification_result(
        [ScoredSubject(c.subject_id, c.score) for c in described],
        point,
        thresholds.impostor_curve,
        mode,
        probe_usable=processed.quality.usable,
        probe_quality_reasons=[c.reason for c in processed.quality.failing],
    )
    by_id = {c.subject_id: c for c in described}
    candidates = tuple(
        RankedMatch(
            rank=r.rank,
            subject_id=r.subject_id,
            subject_ref=by_id[r.subject_id].subject_ref,
            score=r.score,
            status=by_id[r.subject_id].status,
            false_positive_identification_rate=r.false_positive_identification_rate,
            clears_threshold=r.clears_threshold,
        )
        for r in result.candidates
    )
    timings = {
        **processed.timings_ms,
        "face_total": face_ms,
        "search": (time.perf_counter() - start) * 1000.0,
    }
    log_event(
        logger,
        "identified",
        mode=mode.value,
        decision=result.decision.value,
        gallery_size=point.gallery_size,
        candidates=len(candidates),
        cleared=result.cleared,
    )
    return IdentificationOutcome(
        candidates,
        point.threshold,
        point.false_match_rate,
        processed.quality,
        timings,
        mode=mode,
        decision=result.decision,
        point=point,
        statement=result.statement,
        reasons=result.reasons,
    )
