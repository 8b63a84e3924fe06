from __future__ import annotations

import datetime as dt
import hashlib
import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, text

from wajah.benchmarks.index_recovery import seed
from wajah.biometric.templates import MODEL_TAG, Template, normalise
from wajah.enrollment.crypto import RecordCipher, generate_key
from wajah.enrollment.db import Base, create_database_engine
from wajah.enrollment.errors import (
    EncryptionKeyError,
    InvalidSubjectData,
    RecordDecryptionError,
    ReviewAlreadyResolved,
    ReviewNotFound,
    SampleNotFound,
    SubjectAlreadyExists,
    SubjectNotFound,
)
from wajah.enrollment.migrations import (
    alembic_config,
    current_revision,
    head_revision,
    upgrade_database,
)
from wajah.enrollment.records import (
    Capture,
    ReviewCandidate,
    ReviewResolution,
    ReviewStatus,
    SampleRecord,
    StoredTemplate,
    SubjectStatus,
)
from wajah.enrollment.store import RecordStore, open_record_store

TABLES = ("subjects", "subject_identities", "face_samples", "templates", "reviews")


@pytest.fixture
def database_path(tmp_path: Path) -> Path:
    return tmp_path / "wajah.db"


@pytest.fixture
def key() -> bytes:
    return generate_key()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_database_engine(database_url)
    yield engine
    engine.dispose()


def on_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def sqlite_only(engine: Engine, reason: str) -> None:
    if not on_sqlite(engine):
        pytest.skip(f"SQLite only: {reason}")


@pytest.fixture
def store(engine: Engine, key: bytes) -> RecordStore:
    return RecordStore(engine, RecordCipher(key))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


def make_template(rng: np.random.Generator) -> Template:
    return Template(vector=normalise(rng.normal(size=128)), model_tag=MODEL_TAG)


def make_chip(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, size=(150, 150, 3), dtype=np.uint8)


def add_sample(
    store: RecordStore,
    subject_id: int,
    rng: np.random.Generator,
    image: bytes | None = None,
) -> tuple[SampleRecord, StoredTemplate]:
    image = image if image is not None else rng.bytes(2000)
    return store.add_sample(
        Capture(
            subject_id=subject_id,
            capture_source="camera",
            quality={"sharpness": np.float32(0.75), "passed": True, "checks": ["pose", "blur"]},
            chip=make_chip(rng),
            image_bytes=image,
            image_sha256=hashlib.sha256(image).hexdigest(),
            station="desk-3",
            captured_at=dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=3))),
            template=make_template(rng),
        )
    )


def file_bytes(database_path: Path) -> bytes:
    """Everything SQLite has on disk for this database: main file, WAL and shared memory."""
    return b"".join(
        path.read_bytes()
        for path in (database_path, Path(f"{database_path}-wal"), Path(f"{database_path}-shm"))
        if path.exists()
    )


def row_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in TABLES
        }


# -- engine and schema ----------------------------------------------------------------------


def test_sqlite_pragmas_are_on_for_every_connection(store: RecordStore, engine: Engine) -> None:
    sqlite_only(engine, "PRAGMAs are SQLite's connection settings")
    with engine.connect() as first, engine.connect() as second:
        for connection in (first, second):
            pragmas = {
                name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys", "secure_delete")
            }
            assert pragmas == {
                "journal_mode": "wal",
                "synchronous": 2,  # FULL
                "foreign_keys": 1,
                "secure_delete": 1,
            }
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one() >= 1000


def test_migration_schema_equals_models(store: RecordStore, engine: Engine) -> None:
    assert current_revision(engine) == head_revision()
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
        if on_sqlite(engine):
            tables: dict[str, str] = dict(
                connection.exec_driver_sql(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'table'"
                ).all()
            )
            for table in ("subjects", "face_samples", "templates", "reviews"):
                assert "AUTOINCREMENT" in tables[table], table
        else:
            # Ids from sequences (never reused), 64-bit, on every table that hands them out.
            for table in ("subjects", "face_samples", "templates", "reviews"):
                data_type, default = connection.execute(
                    text(
                        "SELECT data_type, column_default FROM information_schema.columns "
                        "WHERE table_name = :table AND column_name = 'id'"
                    ),
                    {"table": table},
                ).one()
                assert data_type == "bigint", table
                assert default.startswith("nextval("), table


def test_upgrade_from_a_url_is_idempotent(database_url: str) -> None:
    url = database_url
    upgrade_database(url)
    upgrade_database(url)
    engine = create_database_engine(url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_migration_renders_portable_postgresql_ddl() -> None:
    config = alembic_config("postgresql://wajah@localhost/wajah")
    config.output_buffer = io.StringIO()
    command.upgrade(config, "head", sql=True)
    ddl = config.output_buffer.getvalue()
    assert "CREATE TABLE templates" in ddl
    assert "BIGSERIAL" in ddl
    assert "BYTEA" in ddl
    assert "TIMESTAMP WITH TIME ZONE" in ddl
    assert "AUTOINCREMENT" not in ddl


# -- keys -----------------------------------------------------------------------------------


def test_wrong_key_is_refused_at_open(engine: Engine, key: bytes, rng: np.random.Generator) -> None:
    store = RecordStore(engine, RecordCipher(key))
    subject = store.create_subject("APP-1", "Amal Hassan")
    add_sample(store, subject.id, rng)
    with pytest.raises(EncryptionKeyError, match="does not match"):
        RecordStore(engine, RecordCipher(generate_key()))
    RecordStore(engine, RecordCipher(key))  # the right key still opens it


def test_records_without_key_check_are_refused(
    store: RecordStore, engine: Engine, key: bytes, rng: np.random.Generator
) -> None:
    add_sample(store, store.create_subject("APP-1", "Amal Hassan").id, rng)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM meta"))
    with pytest.raises(EncryptionKeyError, match="no key-check"):
        RecordStore(engine, RecordCipher(key))


def test_open_record_store_creates_a_key_only_for_a_new_database(
    tmp_path: Path, database_url: str, rng: np.random.Generator
) -> None:
    url = database_url
    (tmp_path / "data").mkdir()
    key_file = tmp_path / "data" / "keys" / "records.key"
    store = open_record_store(url, None, key_file)
    add_sample(store, store.create_subject("APP-1", "Amal Hassan").id, rng)
    store.dispose()
    assert key_file.is_file()

    reopened = open_record_store(url, None, key_file)
    assert reopened.get_subject_by_ref("APP-1").sample_count == 1
    reopened.dispose()

    key_file.unlink()  # the key is lost: the store must not start with a fresh one
    with pytest.raises(EncryptionKeyError, match="does not exist"):
        open_record_store(url, None, key_file)
    assert not key_file.exists()


# -- subjects -------------------------------------------------------------------------------


def test_subject_round_trip(store: RecordStore) -> None:
    created = store.create_subject(
        " APP-2026-0001 ", "Amal Hassan", "1991-04-12", "sdn", "P1234567", "pending_review"
    )
    assert created.subject_ref == "APP-2026-0001"
    assert created.nationality == "SDN"
    assert created.status is SubjectStatus.PENDING_REVIEW
    for fetched in (store.get_subject(created.id), store.get_subject_by_ref("APP-2026-0001")):
        assert fetched == created
        assert fetched.full_name == "Amal Hassan"
        assert fetched.date_of_birth == dt.date(1991, 4, 12)
        assert fetched.document_number == "P1234567"
        assert fetched.created_at.tzinfo is not None
    assert "Amal" not in repr(created)
    assert "P1234567" not in repr(created)


def test_duplicate_subject_ref_is_refused(store: RecordStore) -> None:
    store.create_subject("APP-1", "Amal Hassan")
    with pytest.raises(SubjectAlreadyExists) as caught:
        store.create_subject("APP-1 ", "Someone Else")
    assert caught.value.subject_ref == "APP-1"
    assert "APP-1" not in str(caught.value)
    assert store.list_subjects()[1] == 1


def test_concurrent_creates_of_one_ref_let_exactly_one_win(store: RecordStore) -> None:
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def create(index: int) -> None:
        barrier.wait()
        try:
            store.create_subject("APP-RACE", f"Applicant {index}")
            outcomes.append("created")
        except SubjectAlreadyExists:
            outcomes.append("exists")

    threads = [threading.Thread(target=create, args=(index,)) for index in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["created"] + ["exists"] * 5


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"subject_ref": ""}, "subject_ref"),
        ({"subject_ref": "x" * 65}, "subject_ref"),
        ({"full_name": "  "}, "full_name"),
        ({"full_name": "Amal\x00Hassan"}, "full_name"),
        ({"date_of_birth": "1991-02-30"}, "date_of_birth"),
        ({"date_of_birth": "12/04/1991"}, "date_of_birth"),
        ({"date_of_birth": dt.date(2999, 1, 1)}, "date_of_birth"),
        ({"date_of_birth": dt.date(1850, 1, 1)}, "date_of_birth"),
        ({"nationality": "SD"}, "nationality"),
        ({"nationality": "D<<"}, "nationality"),
        ({"status": "archived"}, "status"),
    ],
)
def test_invalid_subject_data_is_refused(
    store: RecordStore, arguments: dict[str, object], field: str
) -> None:
    values: dict[str, object] = {"subject_ref": "APP-1", "full_name": "Amal Hassan"} | arguments
    with pytest.raises(InvalidSubjectData) as caught:
        store.create_subject(**values)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert store.list_subjects()[1] == 0


def test_unknown_subject(store: RecordStore) -> None:
    with pytest.raises(SubjectNotFound):
        store.get_subject(404)
    with pytest.raises(SubjectNotFound) as caught:
        store.get_subject_by_ref("APP-404")
    assert caught.value.subject_ref == "APP-404"
    with pytest.raises(SubjectNotFound):
        store.set_status(404, "active")
    with pytest.raises(SubjectNotFound):
        store.delete_subject(404)


def test_list_subjects_pages_and_filters(store: RecordStore) -> None:
    for index in range(25):
        store.create_subject(
            f"APP-{index:03d}",
            f"Applicant {index} {'Osman' if index % 5 == 0 else 'Ali'}",
            nationality="SDN" if index % 2 == 0 else "ERI",
            status="pending_review" if index % 10 == 0 else "active",
        )
    store.create_subject("APP-PCT", "Percent 100% Sign")

    first, total = store.list_subjects(offset=0, limit=10)
    last, _ = store.list_subjects(offset=20, limit=10)
    assert total == 26
    assert [subject.subject_ref for subject in first] == [f"APP-{i:03d}" for i in range(10)]
    assert len(last) == 6
    assert [s.id for s in first] == sorted(s.id for s in first)

    sudanese, sudanese_total = store.list_subjects(limit=5, nationality="sdn")
    assert sudanese_total == 13 and len(sudanese) == 5
    assert {subject.nationality for subject in sudanese} == {"SDN"}

    pending, pending_total = store.list_subjects(status=SubjectStatus.PENDING_REVIEW)
    assert pending_total == 3
    assert all(subject.status is SubjectStatus.PENDING_REVIEW for subject in pending)

    osman, osman_total = store.list_subjects(name_contains="OSMAN", nationality="SDN")
    assert osman_total == 3  # indexes 0, 10, 20
    assert {subject.subject_ref for subject in osman} == {"APP-000", "APP-010", "APP-020"}

    percent, percent_total = store.list_subjects(name_contains="0%")
    assert percent_total == 1 and percent[0].subject_ref == "APP-PCT"  # '%' is literal

    with pytest.raises(ValueError):
        store.list_subjects(limit=0)


def test_update_subject_changes_only_what_is_given(store: RecordStore) -> None:
    created = store.create_subject("APP-1", "Amal Hassan", "1991-04-12", "SDN", "P1")
    time.sleep(0.002)
    updated = store.update_subject(created.id, full_name="Amal H. Osman", nationality=None)
    assert updated.full_name == "Amal H. Osman"
    assert updated.nationality is None
    assert updated.date_of_birth == dt.date(1991, 4, 12)
    assert updated.document_number == "P1"
    assert updated.updated_at > created.updated_at
    with pytest.raises(InvalidSubjectData):
        store.update_subject(created.id, date_of_birth="not a date")
    assert store.get_subject(created.id).date_of_birth == dt.date(1991, 4, 12)


def test_set_status(store: RecordStore) -> None:
    subject = store.create_subject("APP-1", "Amal Hassan", status="pending_review")
    assert store.set_status(subject.id, "active").status is SubjectStatus.ACTIVE
    with pytest.raises(InvalidSubjectData):
        store.set_status(subject.id, "gone")


# -- samples and templates ------------------------------------------------------------------


def test_sample_round_trip(store: RecordStore, rng: np.random.Generator) -> None:
    subject = store.create_subject("APP-1", "Amal Hassan")
    chip = make_chip(rng)
    template = make_template(rng)
    image = b"\xff\xd8\xff original jpeg bytes"
    sample, stored = store.add_sample(
        Capture(
            subject_id=subject.id,
            capture_source="scan",
            quality={"sharpness": np.float64(0.5), "scores": np.array([1, 2])},
            chip=chip,
            image_bytes=image,
            image_sha256=hashlib.sha256(image).hexdigest().upper(),
            station="desk-1",
            captured_at=dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=3))),
            template=template,
        )
    )
    assert sample.quality == {"sharpness": 0.5, "scores": [1, 2]}
    assert sample.captured_at == dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
    assert sample.has_image and sample.image_sha256 == hashlib.sha256(image).hexdigest()
    assert store.get_sample(sample.id) == sample
    assert store.list_samples(subject.id) == [sample]
    np.testing.assert_array_equal(store.get_chip(sample.id), chip)
    assert store.get_image(sample.id) == image
    assert stored.template_id >= 1 and stored.sample_id == sample.id
    np.testing.assert_array_equal(stored.vector, template.vector)

    (fetched,) = store.subject_templates(subject.id, MODEL_TAG)
    assert (fetched.template_id, fetched.sample_id, fetched.subject_id) == (
        stored.template_id,
        sample.id,
        subject.id,
    )
    assert fetched.vector.dtype == np.float32 and fetched.vector.shape == (128,)
    np.testing.assert_array_equal(fetched.vector, template.vector)
    assert fetched.as_template().similarity(template) == pytest.approx(1.0, abs=1e-6)
    assert store.subject_templates(subject.id, "another-model") == []
    assert store.get_subject(subject.id).sample_count == 1
    assert store.count_templates(MODEL_TAG) == 1
    assert store.all_template_ids(MODEL_TAG).tolist() == [stored.template_id]
    assert store.template_ids_of_subject(subject.id).tolist() == [stored.template_id]
    assert store.has_image_sha256(hashlib.sha256(image).hexdigest()) == "APP-1"
    assert store.has_image_sha256("0" * 64) is None


def test_sample_without_image_keeps_only_the_chip(
    store: RecordStore, rng: np.random.Generator
) -> None:
    subject = store.create_subject("APP-1", "Amal Hassan")
    sample, _ = store.add_sample(
        Capture(
            subject_id=subject.id,
            capture_source="import",
            quality={},
            chip=make_chip(rng),
            image_bytes=None,
            image_sha256="a" * 64,
            station="bulk",
            captured_at=None,
            template=make_template(rng),
        )
    )
    assert not sample.has_image
    assert store.get_image(sample.id) is None
    with pytest.raises(SampleNotFound):
        store.get_chip(sample.id + 1)


def test_bad_samples_are_refused_and_write_nothing(
    store: RecordStore, engine: Engine, rng: np.random.Generator
) -> None:
    subject = store.create_subject("APP-1", "Amal Hassan")
    before = row_counts(engine)
    unnormalised = Template(vector=np.full(128, 1.0, dtype=np.float32))
    good: dict[str, object] = {
        "capture_source": "camera",
        "quality": {},
        "chip": make_chip(rng),
        "image_bytes": None,
        "image_sha256": "b" * 64,
        "station": "desk",
        "captured_at": None,
        "template": make_template(rng),
    }
    cases: list[tuple[type[Exception], dict[str, object], int]] = [
        (SubjectNotFound, {}, subject.id + 1),
        (InvalidSubjectData, {"capture_source": "webcam"}, subject.id),
        (InvalidSubjectData, {"image_sha256": "not-hex"}, subject.id),
        (InvalidSubjectData, {"quality": {"bad": object()}}, subject.id),
        (InvalidSubjectData, {"captured_at": dt.datetime(2026, 1, 1)}, subject.id),
        (ValueError, {"chip": np.zeros((150, 150), dtype=np.uint8)}, subject.id),
        (ValueError, {"template": unnormalised}, subject.id),
    ]
    for error, override, subject_id in cases:
        with pytest.raises(error):
            store.add_sample(Capture(subject_id=subject_id, **(good | override)))  # type: ignore[arg-type]
    assert row_counts(engine) == before


class FailingTemplateCipher(RecordCipher):
    """Fails while encrypting a template: after the sample row was written and flushed."""

    def encrypt(self, plaintext: bytes, associated: bytes) -> bytes:
        if associated.startswith(b"template:"):
            raise OSError("simulated failure in the middle of add_sample")
        return super().encrypt(plaintext, associated)


def test_add_sample_is_atomic(engine: Engine, key: bytes, rng: np.random.Generator) -> None:
    store = RecordStore(engine, FailingTemplateCipher(key))
    subject = store.create_subject("APP-1", "Amal Hassan")
    before = row_counts(engine)
    with pytest.raises(OSError, match="simulated"):
        add_sample(store, subject.id, rng)
    assert row_counts(engine) == before
    assert store.get_subject(subject.id).sample_count == 0


def test_database_file_holds_no_plaintext(
    store: RecordStore, database_path: Path, engine: Engine, rng: np.random.Generator
) -> None:
    sqlite_only(engine, "the PostgreSQL server's files are not the test's to read")
    subject = store.create_subject("APP-1", "Amal Hassan")
    image = b"ORIGINAL-IMAGE-" + rng.bytes(512)
    sample, stored = add_sample(store, subject.id, rng, image=image)
    chip = store.get_chip(sample.id)
    with engine.connect() as connection:
        template_ciphertext = connection.execute(
            text("SELECT vector_ciphertext FROM templates WHERE id = :id"),
            {"id": stored.template_id},
        ).scalar_one()
    on_disk = file_bytes(database_path)
    assert template_ciphertext in on_disk  # the check below reads the right files
    assert stored.vector.astype("<f4").tobytes() not in on_disk
    assert stored.vector[:16].astype("<f4").tobytes() not in on_disk
    assert image[:64] not in on_disk
    assert chip.tobytes()[:450] not in on_disk  # the first chip row, raw


def test_swapped_ciphertexts_fail_to_decrypt(
    store: RecordStore, engine: Engine, rng: np.random.Generator
) -> None:
    subject = store.create_subject("APP-1", "Amal Hassan")
    first, first_template = add_sample(store, subject.id, rng)
    second, second_template = add_sample(store, subject.id, rng)
    with engine.begin() as connection:
        for table, column, one, other in (
            ("templates", "vector_ciphertext", first_template.template_id,
             second_template.template_id),
            ("face_samples", "chip_ciphertext", first.id, second.id),
        ):  # fmt: skip
            connection.execute(
                text(
                    f"UPDATE {table} SET {column} = "
                    f"(SELECT {column} FROM {table} WHERE id = :other) WHERE id = :one"
                ),
                {"one": one, "other": other},
            )
    with pytest.raises(RecordDecryptionError, match=f"template {first_template.template_id}"):
        store.subject_templates(subject.id, MODEL_TAG)
    with pytest.raises(RecordDecryptionError):
        list(store.iter_templates(MODEL_TAG))
    with pytest.raises(RecordDecryptionError):
        store.get_chip(first.id)
    np.testing.assert_array_equal(store.get_chip(second.id).shape, (150, 150, 3))


def test_template_relinked_to_another_subject_fails_to_decrypt(
    store: RecordStore, engine: Engine, rng: np.random.Generator
) -> None:
    victim = store.create_subject("APP-VICTIM", "Amal Hassan")
    impostor = store.create_subject("APP-IMPOSTOR", "Someone Else")
    _, stored = add_sample(store, impostor.id, rng)
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE templates SET subject_id = :victim WHERE id = :id"),
            {"victim": victim.id, "id": stored.template_id},
        )
    with pytest.raises(RecordDecryptionError):
        store.subject_templates(victim.id, MODEL_TAG)


def test_iter_templates_batches_in_id_order(
    store: RecordStore, engine: Engine, key: bytes, rng: np.random.Generator
) -> None:
    vectors = normalise(rng.normal(size=(10_000, 128)))
    seed(engine, RecordCipher(key), vectors, subjects=100)

    started = time.perf_counter()
    batches = list(store.iter_templates(MODEL_TAG, batch=4096))
    elapsed_s = time.perf_counter() - started
    print(
        f"\niter_templates: 10,000 templates read and decrypted in {elapsed_s * 1000:.0f} ms "
        f"({10_000 / elapsed_s:,.0f}/s; target ~100,000/s)"
    )

    assert [len(batch.template_ids) for batch in batches] == [4096, 4096, 1808]
    template_ids = np.concatenate([batch.template_ids for batch in batches])
    assert template_ids.dtype == np.int64
    assert np.all(np.diff(template_ids) > 0)
    np.testing.assert_array_equal(template_ids, store.all_template_ids(MODEL_TAG))
    all_vectors = np.concatenate([batch.vectors for batch in batches])
    assert all_vectors.dtype == np.float32 and all_vectors.shape == (10_000, 128)
    np.testing.assert_array_equal(all_vectors, vectors)
    subject_ids = np.concatenate([batch.subject_ids for batch in batches])
    assert len(np.unique(subject_ids)) == 100

    checkpoint = int(template_ids[6999])
    replay = list(store.iter_templates(MODEL_TAG, after_id=checkpoint))
    assert len(replay) == 1
    np.testing.assert_array_equal(replay[0].template_ids, template_ids[7000:])
    assert list(store.iter_templates(MODEL_TAG, after_id=int(template_ids[-1]))) == []
    assert list(store.iter_templates("another-model")) == []
    assert store.count_templates(MODEL_TAG) == 10_000


# -- deletion and merging -------------------------------------------------------------------


def test_delete_subject_erases_every_row_and_blob(
    store: RecordStore, engine: Engine, database_path: Path, rng: np.random.Generator
) -> None:
    keeper = store.create_subject("APP-KEEP", "Kept Person", nationality="ERI")
    add_sample(store, keeper.id, rng)
    erased = store.create_subject("APP-ERASE", "Erased Person", "1980-01-01", "SDN", "P999")
    erased_templates = [add_sample(store, erased.id, rng)[1] for _ in range(3)]
    store.create_review(erased.id, [ReviewCandidate(keeper.id, "APP-KEEP", 0.71)])
    keeper_review = store.create_review(keeper.id, [ReviewCandidate(erased.id, "APP-ERASE", 0.7)])
    with engine.connect() as connection:
        blobs = [
            blob
            for query in (
                "SELECT chip_ciphertext FROM face_samples WHERE subject_id = :id",
                "SELECT image_ciphertext FROM face_samples WHERE subject_id = :id",
                "SELECT vector_ciphertext FROM templates WHERE subject_id = :id",
            )
            for blob in connection.execute(text(query), {"id": erased.id}).scalars()
        ]
    assert len(blobs) == 9
    if on_sqlite(engine):
        assert all(blob[:48] in file_bytes(database_path) for blob in blobs)

    removed = store.delete_subject(erased.id)

    assert removed.tolist() == [stored.template_id for stored in erased_templates]
    assert row_counts(engine) == {
        "subjects": 1,
        "subject_identities": 1,
        "face_samples": 1,
        "templates": 1,
        "reviews": 1,
    }
    with pytest.raises(SubjectNotFound):
        store.get_subject(erased.id)
    if on_sqlite(engine):  # secure_delete and the WAL truncation; PostgreSQL vacuums its own
        on_disk = file_bytes(database_path)
        for blob in blobs:
            assert blob[:48] not in on_disk
        assert b"Erased Person" not in on_disk and b"P999" not in on_disk
    (candidate,) = store.get_review(keeper_review.id).candidates
    assert candidate == ReviewCandidate(erased.id, None, 0.7)
    assert store.integrity_check() == "ok"

    # Ids are never reused: the next template does not take the erased (highest) ids.
    replacement = store.create_subject("APP-NEW", "New Person")
    assert replacement.id > erased.id
    _, new_template = add_sample(store, replacement.id, rng)
    assert new_template.template_id > max(removed)


def test_foreign_keys_cascade_in_the_database(
    store: RecordStore, engine: Engine, rng: np.random.Generator
) -> None:
    subject = store.create_subject("APP-1", "Amal Hassan")
    add_sample(store, subject.id, rng)
    store.create_review(subject.id, [])
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM subjects WHERE id = :id"), {"id": subject.id})
        orphaned_reviews = connection.execute(
            text("SELECT COUNT(*) FROM reviews WHERE subject_id IS NULL")
        ).scalar_one()
    counts = row_counts(engine)
    # Reviews are the supervisors' record: the database keeps them, without the subject.
    assert counts.pop("reviews") == orphaned_reviews == 1
    assert set(counts.values()) == {0}


def test_erasure_keeps_resolved_reviews_without_the_subject(
    store: RecordStore, rng: np.random.Generator
) -> None:
    kept = store.create_subject("APP-KEPT", "Amal Hassan")
    resolved_about = store.create_subject("APP-DUP", "Amal Hasan")
    open_about = store.create_subject("APP-DUP2", "A. Hassan")
    candidates = [ReviewCandidate(kept.id, kept.subject_ref, 0.97)]
    resolved = store.create_review(resolved_about.id, candidates)
    assert resolved.subject_ref == "APP-DUP"
    store.resolve_review(resolved.id, "reject", "supervisor-1", "second identity")
    still_open = store.create_review(open_about.id, candidates)

    store.delete_subject(resolved_about.id)
    store.delete_subject(open_about.id)

    after = store.get_review(resolved.id)
    assert (after.subject_id, after.subject_ref) == (None, None)
    assert (after.resolution, after.resolved_by) == (ReviewResolution.REJECT, "supervisor-1")
    assert after.candidates[0].subject_ref == "APP-KEPT"
    with pytest.raises(ReviewNotFound):
        store.get_review(still_open.id)


def test_move_samples_for_a_merge(store: RecordStore, rng: np.random.Generator) -> None:
    kept = store.create_subject("APP-KEPT", "Amal Hassan")
    duplicate = store.create_subject("APP-DUP", "Amal Hasan")
    add_sample(store, kept.id, rng)
    moved_samples = [add_sample(store, duplicate.id, rng) for _ in range(2)]
    chips = {sample.id: store.get_chip(sample.id) for sample, _ in moved_samples}

    moved = store.move_samples(duplicate.id, kept.id)

    assert moved.sample_ids == tuple(sample.id for sample, _ in moved_samples)
    assert moved.template_ids.tolist() == [stored.template_id for _, stored in moved_samples]
    assert store.get_subject(duplicate.id).sample_count == 0
    assert store.get_subject(kept.id).sample_count == 3
    templates = {t.template_id: t for t in store.subject_templates(kept.id, MODEL_TAG)}
    for sample, stored in moved_samples:
        np.testing.assert_array_equal(templates[stored.template_id].vector, stored.vector)
        np.testing.assert_array_equal(store.get_chip(sample.id), chips[sample.id])
        assert store.get_image(sample.id) is not None
    batch = next(store.iter_templates(MODEL_TAG))
    assert set(batch.subject_ids.tolist()) == {kept.id}
    with pytest.raises(InvalidSubjectData):
        store.move_samples(kept.id, kept.id)
    with pytest.raises(SubjectNotFound):
        store.move_samples(kept.id, 999)


# -- reviews --------------------------------------------------------------------------------


def test_review_lifecycle(store: RecordStore) -> None:
    existing = store.create_subject("APP-1", "Amal Hassan")
    new = store.create_subject("APP-2", "Amal Hasan", status="pending_review")
    candidates = [ReviewCandidate(existing.id, "APP-1", 0.93)]
    review = store.create_review(new.id, candidates)
    assert review.status is ReviewStatus.OPEN and review.resolution is None
    assert review.candidates == tuple(candidates)
    assert store.get_review(review.id) == review
    assert store.list_reviews("open") == [review]
    assert store.list_reviews(ReviewStatus.RESOLVED) == []

    resolved = store.resolve_review(review.id, "confirm_distinct", "supervisor-7", "twins")
    assert resolved.status is ReviewStatus.RESOLVED
    assert resolved.resolution is ReviewResolution.CONFIRM_DISTINCT
    assert resolved.resolved_by == "supervisor-7" and resolved.comment == "twins"
    assert resolved.resolved_at is not None and resolved.resolved_at >= resolved.created_at
    assert store.list_reviews("open") == []
    assert store.list_reviews() == [resolved]

    with pytest.raises(ReviewAlreadyResolved):
        store.resolve_review(review.id, "merge", "supervisor-8")
    assert store.get_review(review.id).resolution is ReviewResolution.CONFIRM_DISTINCT
    with pytest.raises(ReviewNotFound):
        store.resolve_review(review.id + 1, "merge", "supervisor-8")
    with pytest.raises(ReviewNotFound):
        store.get_review(review.id + 1)
    with pytest.raises(InvalidSubjectData):
        store.resolve_review(review.id, "approve", "supervisor-8")
    with pytest.raises(SubjectNotFound):
        store.create_review(999, candidates)


def test_concurrent_resolutions_let_exactly_one_win(store: RecordStore) -> None:
    subject = store.create_subject("APP-1", "Amal Hassan", status="pending_review")
    review = store.create_review(subject.id, [])
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def resolve(index: int) -> None:
        barrier.wait()
        try:
            store.resolve_review(review.id, "reject", f"supervisor-{index}")
            outcomes.append("resolved")
        except ReviewAlreadyResolved:
            outcomes.append("already")

    threads = [threading.Thread(target=resolve, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["already"] * 3 + ["resolved"]


def test_a_look_alike_reference_is_the_same_subject(store: RecordStore) -> None:
    created = store.create_subject("LOOK-1", "Look Alike")
    assert store.get_subject_by_ref("ＬＯＯＫ-１").id == created.id  # full-width digits and letters
    with pytest.raises(SubjectAlreadyExists):
        store.create_subject("ＬＯＯＫ-1", "Someone Else")
    with pytest.raises(InvalidSubjectData):
        store.create_subject("LOOK\u200b-1", "Zero Width")


def test_the_database_file_is_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    engine = create_database_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    engine.dispose()
    assert path.stat().st_mode & 0o777 == 0o600
    path.chmod(0o644)  # as an earlier version created it
    create_database_engine(f"sqlite:///{path}").dispose()
    assert path.stat().st_mode & 0o777 == 0o600
