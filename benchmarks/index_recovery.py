"""Index recovery: how long a service start takes with N templates in the database.

Run: ``python -m wajah.benchmarks.index_recovery [--templates 100000]``. Seeds a fresh SQLite store
with N synthetic unit templates (written straight into the tables in one transaction, sealed
exactly as ``SampleRepository.add`` seals them, so seeding does not spend its time on
per-row fsyncs), then measures, with the encrypted index file:

* rebuild: the index built from the database (decrypt every template) and saved;
* load: a start with an up-to-date index file;
* replay: a start after 1,000 templates were added behind the file's checkpoint.

The baseline in the same run is ``iter_templates`` alone (reading and decrypting).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, text

from wajah.benchmarks.report import RunContext, command_line, markdown_table, write_report
from wajah.biometric.templates import MODEL_TAG, normalise
from wajah.enrollment.crypto import RecordCipher
from wajah.enrollment.db import FaceSample, TemplateRow, session_factory
from wajah.enrollment.gallery import GalleryKeeper
from wajah.enrollment.sealing import TEMPLATE_DTYPE, template_associated
from wajah.enrollment.store import open_record_store
from wajah.matcher.index import IndexConfig

TEMPLATES_PER_SUBJECT = 2


def seed(
    engine: Engine, cipher: RecordCipher, vectors: np.ndarray, subjects: int, first: int = 0
) -> None:
    """Write ``vectors`` as templates of ``subjects`` new subjects (``SYN-<first + i>``)
    straight into the tables in one transaction, sealed as ``SampleRepository.add`` seals
    them: for galleries too large to enroll one fsync'd row at a time (tests use it too)."""
    sessions = session_factory(engine)
    now = dt.datetime.now(dt.UTC)
    with sessions.begin() as session:
        subject_ids = [
            session.execute(
                text(
                    "INSERT INTO subjects (subject_ref, status, created_at, updated_at) "
                    "VALUES (:ref, 'active', :now, :now) RETURNING id"
                ),
                {"ref": f"SYN-{first + index}", "now": now.isoformat()},
            ).scalar_one()
            for index in range(subjects)
        ]
        samples = [
            FaceSample(
                subject_id=subject_id,
                capture_source="import",
                quality={},
                chip_ciphertext=b"-",
                image_sha256="c" * 64,
                captured_at=now,
                station="benchmark",
            )
            for subject_id in subject_ids
        ]
        session.add_all(samples)
        session.flush()
        rows = [
            TemplateRow(
                sample_id=samples[index % subjects].id,
                subject_id=samples[index % subjects].subject_id,
                model_tag=MODEL_TAG,
                vector_ciphertext=b"",
                created_at=now,
            )
            for index in range(len(vectors))
        ]
        session.add_all(rows)
        session.flush()
        for row, vector in zip(rows, vectors, strict=True):
            row.vector_ciphertext = cipher.encrypt(
                vector.astype(TEMPLATE_DTYPE).tobytes(),
                template_associated(row.id, row.sample_id, row.subject_id, MODEL_TAG),
            )


def run(count: int, data_dir: Path) -> dict[str, Any]:
    rng = np.random.default_rng(7)
    store = open_record_store(
        f"sqlite:///{data_dir / 'wajah.db'}", None, data_dir / "keys" / "records.key"
    )
    try:
        started = time.perf_counter()
        seed(
            store.engine,
            store.cipher,
            normalise(rng.normal(size=(count, 128))),
            max(1, count // TEMPLATES_PER_SUBJECT),
        )
        seed_s = time.perf_counter() - started

        started = time.perf_counter()
        decrypted = sum(len(batch.template_ids) for batch in store.iter_templates(MODEL_TAG))
        iterate_s = time.perf_counter() - started

        index_path = data_dir / "index" / "gallery.widx"
        keeper = GalleryKeeper(store, index_path, IndexConfig(), MODEL_TAG, cipher=store.cipher)
        started = time.perf_counter()
        rebuilt = keeper.open()  # no file yet: rebuild from the database and save
        rebuild_s = time.perf_counter() - started

        loader = GalleryKeeper(store, index_path, IndexConfig(), MODEL_TAG, cipher=store.cipher)
        started = time.perf_counter()
        loaded = loader.open()
        load_s = time.perf_counter() - started

        seed(store.engine, store.cipher, normalise(rng.normal(size=(1000, 128))), 500, count)
        replayer = GalleryKeeper(store, index_path, IndexConfig(), MODEL_TAG, cipher=store.cipher)
        started = time.perf_counter()
        replayed = replayer.open()
        replay_s = time.perf_counter() - started
        file_bytes = index_path.stat().st_size
    finally:
        store.dispose()
    assert decrypted == count and rebuilt.templates == count and loaded.loaded_from_file
    assert replayed.added_on_replay == 1000
    return {
        "templates": count,
        "seed_s": seed_s,
        "iterate_and_decrypt_s": iterate_s,
        "rebuild_and_save_s": rebuild_s,
        "load_from_file_s": load_s,
        "load_and_replay_1000_s": replay_s,
        "index_file_bytes": file_bytes,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--templates", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    arguments = parser.parse_args(argv)
    context = RunContext(name="index-recovery", command=command_line(argv))
    with tempfile.TemporaryDirectory(prefix="wajah-recovery-") as scratch:
        results = run(arguments.templates, Path(scratch))
    baseline = results["iterate_and_decrypt_s"]
    rows = [
        ["read and decrypt every template (baseline)", f"{baseline:.2f}", "1.00x"],
        *[
            [label, f"{results[key]:.2f}", f"{results[key] / baseline:.2f}x"]
            for label, key in (
                ("rebuild from the database and save (sealed)", "rebuild_and_save_s"),
                ("start with an up-to-date index file", "load_from_file_s"),
                ("start with 1,000 templates behind the checkpoint", "load_and_replay_1000_s"),
            )
        ],
    ]
    body = (
        f"{results['templates']:,} synthetic templates in SQLite (flat index; sealed file "
        f"{results['index_file_bytes'] / 1e6:.1f} MB).\n\n"
        + markdown_table(["step", "seconds", "vs baseline"], rows)
        + "\n"
    )
    write_report(arguments.out, context, results, body, "Index load and rebuild")
    sys.stdout.write(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
