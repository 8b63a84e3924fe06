"""The operations report's computation time over a large audit trail (issue 17).

Seeds a fresh SQLite store with ``events`` hash-chained audit records (as ``AuditLog.append``
chains them, written in one transaction so that seeding does not spend its time on per-row
fsyncs) spread over 30 days, 20 stations and their keys, in an office's mix: verifications
(mostly matches, some no-match, some unusable probes), enrollments (accepted, held for review,
refused by the quality gate, no face), 1:N searches, and the other audited actions the report
skips (reads, subject writes, reviews); plus applications with their timelines (one per 5
events, three in four decided). Then times :func:`wajah.enrollment.reports.build_report` over
the whole window, per day and per week, ``repeats`` times each.

Baseline and floor in the same run: reading the report's rows from the trail without counting
them (the columns it selects, the same filter), and a bare ``count(*)`` with that filter.
"""

from __future__ import annotations

import datetime as dt
import random
import statistics
import time
from pathlib import Path
from typing import Any, Final

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from wajah.benchmarks.report import markdown_table
from wajah.enrollment.audit import record_hash
from wajah.enrollment.crypto import encode_key, generate_key
from wajah.enrollment.db import (
    AUDIT_CHAIN_HEAD_ID,
    ApplicationEventRow,
    ApplicationRow,
    AuditChainHead,
    AuditEventRow,
)
from wajah.enrollment.reports import AUDIT_COLUMNS, CAPTURE_ACTIONS, build_report
from wajah.enrollment.store import open_record_store

DAYS: Final = 30
STATIONS: Final = 20
SEED: Final = 20261203
GENESIS_HASH: Final = "0" * 64
# (action, decision, outcome, details) and its share of the trail.
MIX: Final[tuple[tuple[float, str, str | None, str, dict[str, Any]], ...]] = (
    (0.33, "verify", "match", "ok", {"probe_usable": True}),
    (0.03, "verify", "no_match", "ok", {"probe_usable": True}),
    (0.02, "verify", "inconclusive", "ok", {"probe_usable": False, "failing": ["sharpness"]}),
    (0.01, "verify", None, "no-face", {}),
    (0.16, "face.enroll", "accepted", "ok", {"profile": "enrollment"}),
    (0.01, "face.enroll", "pending_review", "ok", {"profile": "enrollment"}),
    (0.02, "face.enroll", "refused", "low-quality", {"failing": ["pose_yaw", "illumination"]}),
    (0.01, "face.enroll", "refused", "low-quality", {"failing": ["face_count"]}),
    (0.06, "identify", "not_identified", "ok", {"probe_usable": True}),
    (0.02, "identify", "identified", "ok", {"probe_usable": True}),
    (0.12, "subject.read", None, "ok", {}),
    (0.10, "face.list", None, "ok", {}),
    (0.08, "subject.create", None, "ok", {}),
    (0.03, "application.create", "submitted", "ok", {}),
)


def seed_trail(session: Session, events: int, start: dt.datetime, rng: random.Random) -> None:
    weights = [share for share, *_ in MIX]
    span_s = DAYS * 86400
    times = sorted(rng.random() * span_s for _ in range(events))
    prev_hash = GENESIS_HASH
    for index, offset in enumerate(times, start=1):
        _, action, decision, outcome, details = rng.choices(MIX, weights)[0]
        station = rng.randrange(STATIONS)
        row = AuditEventRow(
            id=index,
            at=start + dt.timedelta(seconds=offset),
            key_id=station + 1,
            key_name=f"counter-{station:02d}",
            station=f"counter-{station:02d}",
            role="officer" if action in ("verify", "identify") else "clerk",
            action=action,
            subject_ref=f"A-{rng.randrange(events):07d}",
            decision=decision,
            score=round(rng.uniform(0.85, 0.99), 6) if decision in ("match", "no_match") else None,
            threshold=0.925 if action in CAPTURE_ACTIONS else None,
            request_id=f"req-{index}",
            outcome=outcome,
            details={**details, "elapsed_ms": round(rng.lognormvariate(5.5, 0.4), 1)},
            prev_hash=prev_hash,
        )
        row.hash = record_hash(row)
        prev_hash = row.hash
        session.add(row)
        if index % 5_000 == 0:
            session.flush()
    session.flush()
    session.execute(
        update(AuditChainHead)
        .where(AuditChainHead.id == AUDIT_CHAIN_HEAD_ID)
        .values(last_id=events, last_hash=prev_hash, updated_at=start + dt.timedelta(days=DAYS))
    )


def seed_applications(session: Session, count: int, start: dt.datetime, rng: random.Random) -> None:
    steps = ("submitted", "biometrics_captured", "verified")
    events: list[ApplicationEventRow] = []
    for index in range(1, count + 1):
        created = start + dt.timedelta(seconds=rng.random() * (DAYS - 3) * 86400)
        decided = rng.random() < 0.75
        final = rng.choice(("approved", "approved", "approved", "rejected")) if decided else None
        path = [*steps, final] if final else list(steps[: rng.randrange(1, 4)])
        application = ApplicationRow(
            id=index,
            number=f"KANIM-2026-{index:06d}",
            application_type="passport_new",
            subject_id=None,
            status=path[-1],
            lookup_check="0" * 64,
            created_at=created,
            updated_at=created,
        )
        session.add(application)
        at = created
        previous: str | None = None
        station = rng.randrange(STATIONS)
        for status in path:
            events.append(
                ApplicationEventRow(
                    application_id=index,
                    from_status=previous,
                    to_status=status,
                    at=at,
                    station=f"counter-{station:02d}",
                    key_id=station + 1,
                    reason="benchmark",
                )
            )
            previous = status
            at += dt.timedelta(hours=rng.uniform(0.2, 30.0))
        if index % 2_000 == 0 or index == count:
            session.flush()  # the applications before their events (no ORM relationship)
            session.add_all(events)
            session.flush()
            events.clear()


def run(events: int, data_dir: Path, repeats: int = 3) -> dict[str, Any]:
    rng = random.Random(SEED)
    start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    until = start + dt.timedelta(days=DAYS + 2)
    store = open_record_store(
        f"sqlite:///{data_dir / 'wajah.db'}", encode_key(generate_key()), data_dir / "key"
    )
    try:
        started = time.perf_counter()
        with Session(store.engine) as session, session.begin():
            seed_trail(session, events, start, rng)
            seed_applications(session, events // 5, start, rng)
        seed_s = time.perf_counter() - started
        chain = store.audit.verify_chain()
        assert chain.ok and chain.checked == events, chain

        def timed(work: Any) -> tuple[list[float], Any]:
            seconds, result = [], None
            for _ in range(repeats):
                began = time.perf_counter()
                result = work()
                seconds.append(time.perf_counter() - began)
            return seconds, result

        capture_filter = (
            AuditEventRow.at >= start,
            AuditEventRow.at < until,
            AuditEventRow.action.in_(CAPTURE_ACTIONS),
        )

        def count_only() -> int:
            with Session(store.engine) as session:
                return int(
                    session.scalar(
                        select(func.count()).select_from(AuditEventRow).where(*capture_filter)
                    )
                    or 0
                )

        def read_rows() -> int:
            with Session(store.engine) as session:
                return len(session.execute(select(*AUDIT_COLUMNS).where(*capture_filter)).all())

        floor_s, counted = timed(count_only)
        baseline_s, read = timed(read_rows)
        day_s, by_day = timed(lambda: build_report(store.engine, start, until, period="day"))
        week_s, by_week = timed(lambda: build_report(store.engine, start, until, period="week"))
    finally:
        store.dispose()
    assert counted == read == by_day.audit_events_read == by_week.audit_events_read
    totals = by_day.totals
    assert totals.capture_attempts == by_week.totals.capture_attempts
    return {
        "events": events,
        "capture_events": counted,
        "applications": events // 5,
        "days": DAYS,
        "stations": STATIONS,
        "repeats": repeats,
        "seed_s": seed_s,
        "count_floor_s": floor_s,
        "read_rows_baseline_s": baseline_s,
        "report_day_s": day_s,
        "report_week_s": week_s,
        "rows_per_day_report": len(by_day.rows),
        "rows_per_week_report": len(by_week.rows),
        "totals": by_day.to_dict()["totals"],
    }


def markdown(results: dict[str, Any]) -> str:
    def cell(key: str) -> list[str]:
        values = results[key]
        return [f"{min(values):.3f}", f"{statistics.median(values):.3f}"]

    baseline = statistics.median(results["read_rows_baseline_s"])
    rows = [
        ["count(*) of the report's events (floor)", *cell("count_floor_s"), "—"],
        [
            "read the report's columns, no counting (baseline)",
            *cell("read_rows_baseline_s"),
            "1.00x",
        ],
        *[
            [
                label,
                *cell(key),
                f"{statistics.median(results[key]) / baseline:.2f}x",
            ]
            for label, key in (
                ("report per day and station", "report_day_s"),
                ("report per week and station", "report_week_s"),
            )
        ],
    ]
    return (
        f"{results['events']:,} audit events ({results['capture_events']:,} enrollments, "
        f"verifications and searches) over {results['days']} days and {results['stations']} "
        f"stations, {results['applications']:,} applications with their timelines, SQLite. "
        f"Seconds over {results['repeats']} runs.\n\n"
        + markdown_table(["step", "min s", "median s", "vs baseline"], rows)
        + f"\n\nThe per-day report has {results['rows_per_day_report']} rows (period x "
        "station).\n"
    )
