"""IdentityService end to end on real LFW photos, with the in-process engine (workers=0).

A few hundred identities are enrolled once (one photo each, scan profile) into a module-wide
gallery; their other photos are the genuine probes, other identities' photos the impostors.
Later tests change the gallery (duplicates, resolutions, delete, restart, corruption), so the
tests of this module run in file order on one data directory.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, text

from wajah.api.runtime import ServiceParts, build_service_parts
from wajah.api.settings import Settings
from wajah.biometric.engine import ProcessedImage
from wajah.biometric.errors import NoFaceFound
from wajah.biometric.quality import QualityProfile
from wajah.biometric.templates import MODEL_TAG
from wajah.enrollment.errors import SubjectNotFound
from wajah.enrollment.gallery import GalleryOpenReport
from wajah.enrollment.records import ReviewResolution, SubjectStatus
from wajah.enrollment.service import EnrollmentOutcome, EnrollmentStatus, IdentityService
from wajah.matcher.decision import Decision
from wajah.matcher.persistence import load_index

pytestmark = pytest.mark.slow

IDENTITIES = 200  # LFW identities with two or more photos, drawn with a fixed seed
SEED = 20261126
# Face results by (image sha256, profile, embed), kept across the module's two databases.
FACE_RESULTS: dict[tuple[str, str, bool], ProcessedImage] = {}


@dataclass(frozen=True)
class Person:
    ref: str
    enrollment_photo: Path
    probe_photo: Path


def choose_people(faces_dir: Path) -> list[Person]:
    root = faces_dir / "lfw_deepfunneled"
    candidates = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        photos = sorted(folder.glob("*.jpg"))
        if len(photos) >= 2:
            candidates.append(Person(folder.name, photos[0], photos[1]))
    return sorted(random.Random(SEED).sample(candidates, IDENTITIES), key=lambda p: p.ref)


class CachedPool:
    """The real engine pool, remembering each (image, profile, embed) result: identify and
    verify of the same probe, and its reuse as an impostor, cost one face run, not three."""

    def __init__(self, pool: Any, cache: dict[tuple[str, str, bool], ProcessedImage]) -> None:
        self._pool = pool
        self._cache = cache
        self.config = pool.config

    def process(
        self, data: bytes, profile: QualityProfile, *, embed: bool = True
    ) -> ProcessedImage:
        key = (hashlib.sha256(data).hexdigest(), profile.name, embed)
        if key not in self._cache:
            self._cache[key] = self._pool.process(data, profile, embed=embed)
        return self._cache[key]

    def close(self) -> None:
        self._pool.close()


def open_service(
    settings: Settings, cache: dict[tuple[str, str, bool], ProcessedImage]
) -> tuple[IdentityService, ServiceParts]:
    """The service over parts this module keeps a handle on (the store and the index keeper,
    to check what the service wrote), with the engine pool wrapped in a ``CachedPool``."""
    parts = build_service_parts(settings, workers=0)
    pool = CachedPool(parts.pool, cache)
    service = IdentityService(parts.store, parts.gallery, pool, parts.thresholds)  # type: ignore[arg-type]
    return service, parts


@dataclass
class Gallery:
    settings: Settings
    service: IdentityService
    parts: ServiceParts
    people: list[Person]
    outcomes: dict[str, EnrollmentOutcome] = field(default_factory=dict)
    cache: dict[tuple[str, str, bool], ProcessedImage] = field(default_factory=dict)

    @property
    def accepted(self) -> list[Person]:
        return [p for p in self.people if self.outcomes[p.ref].status is EnrollmentStatus.ACCEPTED]

    def close(self) -> None:
        self.service.close()

    def open(self) -> GalleryOpenReport:
        self.service, self.parts = open_service(self.settings, self.cache)
        return self.parts.opened

    def reopen(self) -> GalleryOpenReport:
        self.close()
        return self.open()


@pytest.fixture(scope="module")
def gallery(
    faces_dir: Path, tmp_path_factory: pytest.TempPathFactory, module_database_url: str
) -> Iterator[Gallery]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("service-data"), database_url=module_database_url
    )
    cache = FACE_RESULTS  # shared by both databases' runs: the face work is the same
    service, parts = open_service(settings, cache)
    state = Gallery(settings, service, parts, choose_people(faces_dir), cache=cache)
    for person in state.people:
        service.create_subject(person.ref, person.ref.replace("_", " "))
        state.outcomes[person.ref] = service.enroll(
            person.ref,
            person.enrollment_photo.read_bytes(),
            source="scan",
            station="test-station",
            profile="scan",
        )
    yield state
    state.close()


def share_floor(rate: float, trials: int) -> float:
    """The lowest success share consistent with an error ``rate`` over ``trials`` trials:
    1 - rate - 3 binomial standard errors - one trial (so a tiny sample is not held to a
    precision it cannot have)."""
    spread = 3.0 * math.sqrt(rate * (1.0 - rate) / trials) + 1.0 / trials
    return 1.0 - rate - spread


def known_rate(*rates: float | None) -> float:
    for rate in rates:
        if rate is not None:
            return rate
    raise AssertionError("the shipped thresholds state no error rate to check against")


def identify_refs(service: IdentityService, photo: Path) -> list[str]:
    return [c.subject_ref for c in service.identify(photo.read_bytes()).candidates]


# -- enrollment and matching ---------------------------------------------------------------------


def test_enrollment_outcomes(gallery: Gallery) -> None:
    outcomes = list(gallery.outcomes.values())
    accepted = [o for o in outcomes if o.status is EnrollmentStatus.ACCEPTED]
    refused = [o for o in outcomes if o.status is EnrollmentStatus.REFUSED]
    pending = [o for o in outcomes if o.status is EnrollmentStatus.PENDING_REVIEW]
    # The scan profile passes ~94 % of LFW (the face count binds: bystanders).
    assert len(refused) <= 0.10 * IDENTITIES
    # False duplicate flags: enrolment i is searched against i earlier subjects, each
    # comparison falsely matching with the duplicate operating point's false-match rate.
    duplicate = gallery.service.thresholds.duplicate
    expected_flags = known_rate(duplicate.false_match_rate) * IDENTITIES * (IDENTITIES - 1) / 2
    assert len(pending) <= expected_flags + 3 * math.sqrt(expected_flags) + 2, len(pending)
    for outcome in refused:
        assert outcome.sample is None and outcome.template_id is None and outcome.reasons
    for outcome in pending:
        assert outcome.review is not None and outcome.candidates
        assert outcome.subject.status is SubjectStatus.PENDING_REVIEW
        assert all(
            c.score >= gallery.service.thresholds.duplicate.threshold for c in outcome.candidates
        )
    stored = len(accepted) + len(pending)
    assert gallery.parts.store.count_templates(MODEL_TAG) == stored
    assert len(gallery.parts.gallery) == stored


def test_genuine_probes_are_identified_at_rank_one_and_verified(gallery: Gallery) -> None:
    service, thresholds = gallery.service, gallery.service.thresholds
    acquired = matched = rank_one = 0
    failed_to_acquire = 0
    for person in gallery.accepted:
        probe = person.probe_photo.read_bytes()
        try:
            verification = service.verify(person.ref, probe).verification
            candidates = service.identify(probe).candidates
        except NoFaceFound:
            failed_to_acquire += 1
            continue
        if verification.decision is Decision.INCONCLUSIVE:  # probe quality: retake, not a miss
            failed_to_acquire += 1
            continue
        acquired += 1
        matched += verification.decision is Decision.MATCH
        rank_one += bool(candidates) and candidates[0].subject_ref == person.ref
    # The verification profile passes ~75 % of LFW (yaw 79 %, face count 95 %, see the profile
    # table in biometric/quality/profiles.py): the rest are inconclusive (retake), not misses.
    assert failed_to_acquire <= 0.35 * len(gallery.accepted)
    assert acquired >= 100
    verify_fnmr = known_rate(thresholds.verify.false_non_match_rate)
    assert matched / acquired >= share_floor(verify_fnmr, acquired), (matched, acquired)
    # Investigation mode ranks the mate whatever the threshold (issue 15): it misses rank 1
    # only when someone else outscores it, rarer on LFW than a 1:1 miss at FMR 1e-3 (held-out
    # pairsDevTest: rank-1 96.6 %, verify FNMR 6.3 %, benchmarks/results).
    assert rank_one / acquired >= share_floor(verify_fnmr, acquired), (rank_one, acquired)


def test_impostors_are_no_match(gallery: Gallery) -> None:
    service, thresholds = gallery.service, gallery.service.thresholds
    accepted = gallery.accepted
    acquired = rejected = 0
    for claimed, other in zip(accepted, accepted[1:] + accepted[:1], strict=True):
        try:
            decision = service.verify(claimed.ref, other.probe_photo.read_bytes())
        except NoFaceFound:
            continue
        if decision.verification.decision is Decision.INCONCLUSIVE:
            continue
        acquired += 1
        rejected += decision.verification.decision is Decision.NO_MATCH
    false_match_rate = known_rate(thresholds.verify.false_match_rate)
    assert acquired >= 0.6 * len(accepted)  # see the genuine test on inconclusive probes
    assert rejected / acquired >= share_floor(false_match_rate, acquired), (rejected, acquired)


# -- duplicates and their resolution -------------------------------------------------------------


@pytest.fixture(scope="module")
def clear_pairs(gallery: Gallery) -> list[Person]:
    """Accepted people whose probe photo scores well above the duplicate threshold against
    their own enrolment (so enrolling it under a new reference must raise a review). Taken
    before the duplicate tests change the gallery; each later test uses its own people."""
    threshold = gallery.service.thresholds.duplicate.threshold
    chosen = []
    for person in gallery.accepted:
        try:
            found = gallery.service.identify(person.probe_photo.read_bytes()).candidates
        except NoFaceFound:
            continue
        if found and found[0].subject_ref == person.ref and found[0].score >= threshold + 0.03:
            chosen.append(person)
    assert len(chosen) >= 5, "not enough clear genuine pairs"
    return chosen


def enroll_again(gallery: Gallery, person: Person, suffix: str) -> EnrollmentOutcome:
    store = gallery.parts.store
    new_ref = f"{person.ref}-{suffix}"
    store.create_subject(new_ref, person.ref.replace("_", " "))
    return gallery.service.enroll(
        new_ref,
        person.probe_photo.read_bytes(),
        source="scan",
        station="test-station",
        profile="scan",
    )


def test_same_person_again_goes_to_review_and_each_resolution_works(
    gallery: Gallery, clear_pairs: list[Person]
) -> None:
    service, store = gallery.service, gallery.parts.store
    distinct, merged, rejected = clear_pairs[:3]
    outcomes = {}
    for person, suffix in ((distinct, "distinct"), (merged, "merge"), (rejected, "reject")):
        outcome = enroll_again(gallery, person, suffix)
        assert outcome.status is EnrollmentStatus.PENDING_REVIEW
        assert outcome.candidates[0].subject_ref == person.ref
        assert outcome.review is not None
        assert outcome.review.candidates[0].subject_ref == person.ref
        assert store.get_subject(outcome.subject.id).status is SubjectStatus.PENDING_REVIEW
        outcomes[suffix] = outcome

    # confirm_distinct: the new subject becomes active and searchable.
    review = outcomes["distinct"].review
    assert review is not None
    resolution = service.resolve_review(
        review.id, ReviewResolution.CONFIRM_DISTINCT, resolved_by="supervisor-1", comment="twins"
    )
    assert resolution.surviving_subject is not None
    assert resolution.surviving_subject.status is SubjectStatus.ACTIVE
    assert f"{distinct.ref}-distinct" in identify_refs(service, distinct.probe_photo)

    # merge: the sample joins the existing subject; the new record is gone.
    review = outcomes["merge"].review
    assert review is not None
    existing = store.get_subject_by_ref(merged.ref)
    resolution = service.resolve_review(
        review.id, ReviewResolution.MERGE, resolved_by="supervisor-1", comment="same person"
    )
    assert resolution.surviving_subject is not None
    assert resolution.surviving_subject.id == existing.id
    assert resolution.surviving_subject.sample_count == existing.sample_count + 1
    with pytest.raises(SubjectNotFound):
        store.get_subject_by_ref(f"{merged.ref}-merge")
    assert len(gallery.parts.gallery.templates_of_subject(existing.id)) == 2
    verified = service.verify(merged.ref, merged.probe_photo.read_bytes()).verification
    assert verified.decision is Decision.MATCH
    assert verified.templates_compared == 2
    assert verified.score >= 0.999  # the merged sample itself is among the subject's templates

    # reject: the new subject is erased, from the store and from the index.
    review = outcomes["reject"].review
    assert review is not None
    rejected_id = outcomes["reject"].subject.id
    resolution = service.resolve_review(
        review.id, ReviewResolution.REJECT, resolved_by="supervisor-1", comment="fraud"
    )
    assert resolution.surviving_subject is None
    with pytest.raises(SubjectNotFound):
        store.get_subject_by_ref(f"{rejected.ref}-reject")
    assert len(gallery.parts.gallery.templates_of_subject(rejected_id)) == 0
    assert identify_refs(service, rejected.probe_photo)[:1] == [rejected.ref]


# -- erasure ---------------------------------------------------------------------------------------


def ciphertexts_of(engine: Engine, subject_id: int) -> list[bytes]:
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT chip_ciphertext, image_ciphertext FROM face_samples "
                "WHERE subject_id = :id UNION ALL "
                "SELECT vector_ciphertext, NULL FROM templates WHERE subject_id = :id"
            ),
            {"id": subject_id},
        ).all()
    return [bytes(blob) for row in rows for blob in row if blob]


def database_bytes(database: Path) -> bytes:
    files = [database, database.with_name(database.name + "-wal")]
    return b"".join(path.read_bytes() for path in files if path.exists())


def test_delete_removes_subject_from_search_and_blobs_from_disk(
    gallery: Gallery, clear_pairs: list[Person]
) -> None:
    service, store = gallery.service, gallery.parts.store
    person = clear_pairs[3]
    subject = store.get_subject_by_ref(person.ref)
    database = gallery.settings.database_path
    on_sqlite = store.engine.dialect.name == "sqlite"  # PostgreSQL's files are the server's
    blobs = ciphertexts_of(store.engine, subject.id)
    assert len(blobs) == 3  # chip, original image, template
    if on_sqlite:
        on_disk = database_bytes(database)
        assert all(blob[16:80] in on_disk for blob in blobs)  # the check can see them

    assert person.ref in identify_refs(service, person.probe_photo)
    assert service.delete_subject(person.ref) == 1
    assert person.ref not in identify_refs(service, person.probe_photo)
    with pytest.raises(SubjectNotFound):
        store.get_subject_by_ref(person.ref)
    assert len(gallery.parts.gallery.templates_of_subject(subject.id)) == 0
    assert ciphertexts_of(store.engine, subject.id) == []
    if on_sqlite:
        on_disk = database_bytes(database)
        assert not any(blob[16:80] in on_disk for blob in blobs)


def test_delete_removes_the_template_from_the_index_file(
    gallery: Gallery, clear_pairs: list[Person]
) -> None:
    service, store = gallery.service, gallery.parts.store
    person = clear_pairs[4]
    subject = store.get_subject_by_ref(person.ref)
    stored = store.subject_templates(subject.id, MODEL_TAG)[0]
    gallery.parts.gallery.save()
    index_file = gallery.settings.index_path
    raw = index_file.read_bytes()
    assert stored.vector.astype("<f4").tobytes() not in raw  # sealed with the records key

    def saved_template_ids() -> set[int]:
        saved = load_index(index_file, MODEL_TAG, gallery.parts.gallery.config, store.cipher)
        return set(saved.template_ids().tolist())

    assert stored.template_id in saved_template_ids()
    service.delete_subject(person.ref)
    assert stored.template_id not in saved_template_ids()  # gone from the file at once


# -- restart and a damaged index file ----------------------------------------------------------


def search_fingerprint(gallery: Gallery, people: list[Person]) -> list[list[tuple[str, float]]]:
    fingerprint = []
    for person in people:
        try:
            found = gallery.service.identify(person.probe_photo.read_bytes()).candidates
        except NoFaceFound:
            continue
        fingerprint.append([(c.subject_ref, round(c.score, 5)) for c in found])
    return fingerprint


def state_fingerprint(gallery: Gallery) -> tuple[Any, ...]:
    store = gallery.parts.store
    subjects, total = store.list_subjects(limit=1000)
    return (
        total,
        [(s.subject_ref, str(s.status), s.sample_count) for s in subjects],
        [(r.id, str(r.status)) for r in store.list_reviews(limit=1000)],
        store.all_template_ids(MODEL_TAG).tolist(),
    )


def assert_index_matches_database(gallery: Gallery, report: GalleryOpenReport) -> None:
    store, index = gallery.parts.store, gallery.parts.gallery
    database_ids = store.all_template_ids(MODEL_TAG)
    assert report.templates == store.count_templates(MODEL_TAG) == len(index)
    assert np.array_equal(np.sort(index.template_ids()), database_ids)


def test_restart_keeps_everything_and_loads_the_index_from_file(gallery: Gallery) -> None:
    probes = gallery.accepted[:40]
    searches_before = search_fingerprint(gallery, probes)
    state_before = state_fingerprint(gallery)
    report = gallery.reopen()
    assert report.loaded_from_file, report.rebuilt_reason
    assert report.rebuilt_reason is None
    assert (report.added_on_replay, report.removed_on_replay) == (0, 0)
    assert_index_matches_database(gallery, report)
    assert state_fingerprint(gallery) == state_before
    assert search_fingerprint(gallery, probes) == searches_before


def flip_bytes(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for offset in (len(data) // 3, len(data) // 2, len(data) - 7):
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])


@pytest.mark.parametrize("damage", [flip_bytes, truncate], ids=["flipped", "truncated"])
def test_damaged_index_file_is_rebuilt_with_the_same_results(gallery: Gallery, damage: Any) -> None:
    probes = gallery.accepted[:40]
    searches_before = search_fingerprint(gallery, probes)
    gallery.close()
    damage(gallery.settings.index_path)
    report = gallery.open()
    assert not report.loaded_from_file
    assert report.rebuilt_reason
    assert_index_matches_database(gallery, report)
    assert search_fingerprint(gallery, probes) == searches_before
    # The rebuilt index was saved: the next start loads it.
    assert gallery.reopen().loaded_from_file
