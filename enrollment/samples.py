"""Face samples and their templates: one aggregate, since a template is computed from one
sample and shares its subject. Chips, original images and template vectors are stored
encrypted (``enrollment/sealing.py`` names what each ciphertext belongs to)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from wajah.enrollment.clock import utcnow
from wajah.enrollment.db import (
    STATION_MAX,
    FaceSample,
    Subject,
    TemplateChangeOperation,
    TemplateRow,
)
from wajah.enrollment.errors import InvalidSubjectData
from wajah.enrollment.records import (
    Capture,
    CaptureSource,
    MovedSamples,
    SampleRecord,
    StoredTemplate,
)
from wajah.enrollment.sealing import (
    chip_associated,
    decode_chip,
    encode_chip,
    image_associated,
    open_templates,
    read_only_vector,
    template_associated,
    template_plaintext,
)
from wajah.enrollment.session_scope import (
    SessionScope,
    int64_array,
    require_sample,
    require_subject,
)
from wajah.enrollment.validation import (
    clean_aware_utc,
    clean_quality_report,
    clean_sha256,
    clean_text,
    parse_choice,
)

__all__ = ["SampleRepository", "remove_samples_of_subject", "template_columns"]


class SampleRepository:
    """The samples and templates, inside one transaction."""

    def __init__(self, scope: SessionScope) -> None:
        self._scope = scope
        self._session = scope.session
        self._cipher = scope.cipher

    def add(self, capture: Capture) -> tuple[SampleRecord, StoredTemplate]:
        """Store one capture and its template.

        A row that carries a ciphertext is inserted first and flushed to learn its id, then
        given its ciphertext, whose associated data names that id.
        """
        source = parse_choice(CaptureSource, capture.capture_source, "capture_source")
        quality_json = clean_quality_report(capture.quality)
        chip_png = encode_chip(capture.chip)
        vector = template_plaintext(capture.template)
        sha = clean_sha256(capture.image_sha256)
        station_name = clean_text(capture.station, "station", STATION_MAX, required=True)
        now = utcnow()
        captured = clean_aware_utc(capture.captured_at) if capture.captured_at is not None else now
        subject_id = capture.subject_id
        model_tag = capture.template.model_tag
        session = self._session
        subject = require_subject(session, subject_id)
        sample = FaceSample(
            subject_id=subject_id,
            capture_source=source.value,
            quality=quality_json,
            chip_ciphertext=b"",
            image_ciphertext=None,
            image_sha256=sha,
            captured_at=captured,
            station=station_name,
        )
        session.add(sample)
        session.flush()
        sample.chip_ciphertext = self._cipher.encrypt(
            chip_png, chip_associated(sample.id, subject_id)
        )
        if capture.image_bytes is not None:
            sample.image_ciphertext = self._cipher.encrypt(
                capture.image_bytes, image_associated(sample.id, subject_id)
            )
        row = TemplateRow(
            sample_id=sample.id,
            subject_id=subject_id,
            model_tag=model_tag,
            vector_ciphertext=b"",
            created_at=now,
        )
        session.add(row)
        session.flush()
        row.vector_ciphertext = self._cipher.encrypt(
            vector.tobytes(), template_associated(row.id, sample.id, subject_id, model_tag)
        )
        subject.updated_at = now
        session.flush()
        self._scope.note_template_change(TemplateChangeOperation.ADD, row.id, subject_id)
        self._scope.note(
            "sample_added", subject_id=subject_id, sample_id=sample.id, template_id=row.id
        )
        stored = StoredTemplate(
            template_id=row.id,
            subject_id=subject_id,
            sample_id=sample.id,
            model_tag=model_tag,
            vector=read_only_vector(vector),
        )
        return _sample_record(sample), stored

    def get(self, sample_id: int) -> SampleRecord:
        return _sample_record(require_sample(self._session, sample_id))

    def list_of_subject(self, subject_id: int) -> list[SampleRecord]:
        require_subject(self._session, subject_id)
        samples = self._session.execute(
            select(FaceSample).where(FaceSample.subject_id == subject_id).order_by(FaceSample.id)
        ).scalars()
        return [_sample_record(sample) for sample in samples]

    def chip(self, sample_id: int) -> np.ndarray:
        """The sample's aligned face chip, (150, 150, 3) uint8 RGB."""
        sample = require_sample(self._session, sample_id)
        png = self._cipher.decrypt(
            sample.chip_ciphertext, chip_associated(sample_id, sample.subject_id)
        )
        return decode_chip(png)

    def image(self, sample_id: int) -> bytes | None:
        """The original image bytes, or None when only the chip was kept."""
        sample = require_sample(self._session, sample_id)
        if sample.image_ciphertext is None:
            return None
        return self._cipher.decrypt(
            sample.image_ciphertext, image_associated(sample_id, sample.subject_id)
        )

    def owner_of_image(self, image_sha256: str) -> str | None:
        """The subject_ref of a subject already holding an image with this SHA-256, if any
        (lets a bulk import skip what an interrupted run already stored)."""
        return self._session.execute(
            select(Subject.subject_ref)
            .join(FaceSample, FaceSample.subject_id == Subject.id)
            .where(FaceSample.image_sha256 == image_sha256.strip().lower())
            .limit(1)
        ).scalar_one_or_none()

    def templates_of_subject(self, subject_id: int, model_tag: str) -> list[StoredTemplate]:
        require_subject(self._session, subject_id)
        rows = self._session.execute(
            template_columns()
            .where(TemplateRow.subject_id == subject_id, TemplateRow.model_tag == model_tag)
            .order_by(TemplateRow.id)
        ).all()
        if not rows:
            return []
        batch = open_templates(self._cipher, rows, model_tag)
        return [
            StoredTemplate(
                template_id=int(row[0]),
                subject_id=int(row[2]),
                sample_id=int(row[1]),
                model_tag=model_tag,
                vector=read_only_vector(batch.vectors[index]),
            )
            for index, row in enumerate(rows)
        ]

    def template_ids(self, model_tag: str) -> np.ndarray:
        """(N,) int64, ascending."""
        return int64_array(
            self._session.execute(
                select(TemplateRow.id)
                .where(TemplateRow.model_tag == model_tag)
                .order_by(TemplateRow.id)
            ).scalars()
        )

    def template_owners(self, model_tag: str) -> tuple[np.ndarray, np.ndarray]:
        """(template ids (N,) int64 ascending, their subject ids (N,) int64): lets the index
        notice templates that changed subject (a review's merge) as well as added or
        removed ones."""
        rows = self._session.execute(
            select(TemplateRow.id, TemplateRow.subject_id)
            .where(TemplateRow.model_tag == model_tag)
            .order_by(TemplateRow.id)
        ).all()
        ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        owners = np.fromiter((row[1] for row in rows), dtype=np.int64, count=len(rows))
        return ids, owners

    def count_templates(self, model_tag: str) -> int:
        return int(
            self._session.execute(
                select(func.count()).where(TemplateRow.model_tag == model_tag)
            ).scalar_one()
        )

    def template_ids_of_subject(self, subject_id: int, model_tag: str | None = None) -> np.ndarray:
        """(N,) int64, ascending; of every model unless ``model_tag`` is given."""
        query = select(TemplateRow.id).where(TemplateRow.subject_id == subject_id)
        if model_tag is not None:
            query = query.where(TemplateRow.model_tag == model_tag)
        return int64_array(self._session.execute(query.order_by(TemplateRow.id)).scalars())

    def move(self, from_subject_id: int, to_subject_id: int) -> MovedSamples:
        """Re-link every sample (and its templates) of one subject to another, for a review's
        'merge'. Ciphertexts are re-encrypted under the new subject's associated data."""
        if from_subject_id == to_subject_id:
            raise InvalidSubjectData(
                "cannot move samples to the same subject", field="to_subject_id"
            )
        session = self._session
        now = utcnow()
        source = require_subject(session, from_subject_id)
        target = require_subject(session, to_subject_id)
        samples = list(
            session.execute(
                select(FaceSample)
                .where(FaceSample.subject_id == from_subject_id)
                .order_by(FaceSample.id)
            ).scalars()
        )
        for sample in samples:
            sample.chip_ciphertext = self._reseal(
                sample.chip_ciphertext,
                chip_associated(sample.id, from_subject_id),
                chip_associated(sample.id, to_subject_id),
            )
            if sample.image_ciphertext is not None:
                sample.image_ciphertext = self._reseal(
                    sample.image_ciphertext,
                    image_associated(sample.id, from_subject_id),
                    image_associated(sample.id, to_subject_id),
                )
            sample.subject_id = to_subject_id
        templates = list(
            session.execute(
                select(TemplateRow)
                .where(TemplateRow.subject_id == from_subject_id)
                .order_by(TemplateRow.id)
            ).scalars()
        )
        for row in templates:
            row.vector_ciphertext = self._reseal(
                row.vector_ciphertext,
                template_associated(row.id, row.sample_id, from_subject_id, row.model_tag),
                template_associated(row.id, row.sample_id, to_subject_id, row.model_tag),
            )
            row.subject_id = to_subject_id
            # Under its new owner: replicas drop the old entry and index the re-sealed one.
            self._scope.note_template_change(
                TemplateChangeOperation.REMOVE, row.id, from_subject_id
            )
            self._scope.note_template_change(TemplateChangeOperation.ADD, row.id, to_subject_id)
        source.updated_at = now
        target.updated_at = now
        session.flush()
        moved = MovedSamples(
            sample_ids=tuple(sample.id for sample in samples),
            template_ids=int64_array(row.id for row in templates),
        )
        self._scope.note(
            "samples_moved",
            from_subject_id=from_subject_id,
            to_subject_id=to_subject_id,
            sample_count=len(moved.sample_ids),
            template_count=len(moved.template_ids),
        )
        return moved

    def _reseal(self, ciphertext: bytes, old_associated: bytes, new_associated: bytes) -> bytes:
        """The same plaintext, sealed to the row's new owner."""
        plaintext = self._cipher.decrypt(ciphertext, old_associated)
        return self._cipher.encrypt(plaintext, new_associated)


def remove_samples_of_subject(session: Session, subject_id: int) -> np.ndarray:
    """Delete a subject's templates and samples; returns the template ids, (N,) int64.

    Children first and explicitly: correct even on a connection without enforced foreign keys;
    the ON DELETE CASCADEs are the second line."""
    template_ids = int64_array(
        session.execute(
            select(TemplateRow.id)
            .where(TemplateRow.subject_id == subject_id)
            .order_by(TemplateRow.id)
        ).scalars()
    )
    session.execute(delete(TemplateRow).where(TemplateRow.subject_id == subject_id))
    session.execute(delete(FaceSample).where(FaceSample.subject_id == subject_id))
    return template_ids


def template_columns() -> Any:
    """What decrypting a template needs: id, sample id, subject id, ciphertext."""
    return select(
        TemplateRow.id, TemplateRow.sample_id, TemplateRow.subject_id, TemplateRow.vector_ciphertext
    )


def _sample_record(sample: FaceSample) -> SampleRecord:
    return SampleRecord(
        id=sample.id,
        subject_id=sample.subject_id,
        capture_source=CaptureSource(sample.capture_source),
        quality=dict(sample.quality),
        image_sha256=sample.image_sha256,
        has_image=sample.image_ciphertext is not None,
        station=sample.station,
        captured_at=sample.captured_at,
    )
