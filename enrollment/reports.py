"""Monitoring and evaluation: how the office's service ran, from the audit trail and the
applications' timeline, so the figures are those of what was decided and recorded.

Per period (day or ISO week, in the office's time zone) and per station and key:

* enrollments, verifications and 1:N searches with their decisions;
* the capture attempts among them, failures to acquire (no usable face in the photo: no face
  or several faces, an image that does not decode; ISO/IEC 19795-1 counts quality refusals
  as failures to acquire too, the office wants them apart) and quality refusals (one face,
  refused by the quality gate: ``low-quality`` at enrollment, an unusable probe at the
  counter), as rates of the attempts, with the gate's most frequent failing components;
* the decision latency (the request's time as the caller waited, ``details.elapsed_ms``):
  median and 90th percentile;
* applications decided (approved, rejected) and the time from the application to its
  decision: median and 90th percentile.

And, at the end of the window, the backlogs: open duplicate-identity reviews with their age.
:data:`BACKLOG_SOURCES` lists what counts as a backlog; a new queue (watchlist hits) adds one
function there.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from wajah.enrollment.clock import utcnow
from wajah.enrollment.db import ApplicationEventRow, ApplicationRow, AuditEventRow, Review
from wajah.enrollment.records import ApplicationStatus, ReviewStatus

__all__ = [
    "BACKLOG_SOURCES",
    "Backlog",
    "Percentiles",
    "Period",
    "Report",
    "ReportRow",
    "build_report",
    "report_csv",
    "report_window",
]

Period = Literal["day", "week"]

# The audit actions the report reads, by what they are.
ENROLL_ACTION: Final = "face.enroll"
VERIFY_ACTION: Final = "verify"
SEARCH_ACTION: Final = "identify"
CAPTURE_ACTIONS: Final = (ENROLL_ACTION, VERIFY_ACTION, SEARCH_ACTION)
# Problem slugs that mean no usable face could be taken from the photo.
FAILURE_TO_ACQUIRE: Final = frozenset(
    {
        "no-face",
        "multiple-faces",
        "image-decode-error",
        "unsupported-image-format",
        "image-dimensions",
        "image-too-complex",
        "image-too-large",
    }
)
QUALITY_REFUSAL: Final = "low-quality"
# A refusal whose failing components include this one found no face, or several: that is a
# failure to acquire, not a face under the quality gate (biometric/quality/report.py).
FACE_COUNT_COMPONENT: Final = "face_count"
TOP_REASONS: Final = 5
AUDIT_BATCH: Final = 5_000  # rows per keyset-paginated read of the trail
# What the report reads of each audit record (the benchmark's baseline reads the same).
AUDIT_COLUMNS: Final = (
    AuditEventRow.id,
    AuditEventRow.at,
    AuditEventRow.station,
    AuditEventRow.key_name,
    AuditEventRow.key_id,
    AuditEventRow.action,
    AuditEventRow.decision,
    AuditEventRow.outcome,
    AuditEventRow.details,
)
DEFAULT_WINDOW: Final = dt.timedelta(days=7)
MAX_WINDOW: Final = dt.timedelta(days=400)


def report_window(
    since: dt.datetime | None, until: dt.datetime | None
) -> tuple[dt.datetime, dt.datetime]:
    """The window asked for (a naive time is taken as UTC), by default the 7 days to now;
    ValueError for an empty, reversed or over-long one."""
    end = _aware(until) if until is not None else utcnow()
    start = _aware(since) if since is not None else end - DEFAULT_WINDOW
    if end <= start:
        raise ValueError("until must be after since")
    if end - start > MAX_WINDOW:
        raise ValueError(f"the window may span at most {MAX_WINDOW.days} days")
    return start, end


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Percentiles:
    count: int
    median: float | None
    p90: float | None

    @classmethod
    def of(cls, values: Sequence[float]) -> Percentiles:
        """Median and 90th percentile with linear interpolation between the closest ranks
        (numpy's default method), in plain Python: the report makes thousands of these over
        short lists, where a numpy call costs more than the sort."""
        if not values:
            return cls(0, None, None)
        ordered = sorted(values)
        return cls(
            len(ordered), round(_quantile(ordered, 0.5), 1), round(_quantile(ordered, 0.9), 1)
        )


def _quantile(ordered: Sequence[float], q: float) -> float:
    position = (len(ordered) - 1) * q
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


@dataclass
class _Bucket:
    """What one (period, station, key) gathers while the trail is read."""

    decisions: dict[str, Counter[str]] = field(
        default_factory=lambda: {action: Counter() for action in CAPTURE_ACTIONS}
    )
    attempts: int = 0
    failure_to_acquire: int = 0
    quality_refusals: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    latency_ms: dict[str, list[float]] = field(
        default_factory=lambda: {action: [] for action in CAPTURE_ACTIONS}
    )
    decided: Counter[str] = field(default_factory=Counter)
    decision_s: list[float] = field(default_factory=list)

    def merge(self, other: _Bucket) -> None:
        for action in CAPTURE_ACTIONS:
            self.decisions[action].update(other.decisions[action])
            self.latency_ms[action].extend(other.latency_ms[action])
        self.attempts += other.attempts
        self.failure_to_acquire += other.failure_to_acquire
        self.quality_refusals += other.quality_refusals
        self.reasons.update(other.reasons)
        self.decided.update(other.decided)
        self.decision_s.extend(other.decision_s)


@dataclass(frozen=True)
class ReportRow:
    """One period at one station (key), or the totals (period and station None)."""

    period: str | None
    station: str | None
    key_id: int | None
    enrollments: Mapping[str, int]  # decision or problem slug -> count
    verifications: Mapping[str, int]
    searches: Mapping[str, int]
    capture_attempts: int
    failure_to_acquire: int
    quality_refusals: int
    failure_to_acquire_rate: float | None
    quality_refusal_rate: float | None
    top_refusal_reasons: tuple[tuple[str, int], ...]
    latency_ms: Mapping[str, Percentiles]  # per action, of the answered requests
    applications_decided: Mapping[str, int]  # approved / rejected
    time_to_decision_s: Percentiles

    @classmethod
    def of(
        cls, period: str | None, station: str | None, key_id: int | None, b: _Bucket
    ) -> ReportRow:
        def rate(count: int) -> float | None:
            return round(count / b.attempts, 4) if b.attempts else None

        return cls(
            period=period,
            station=station,
            key_id=key_id,
            enrollments=dict(sorted(b.decisions[ENROLL_ACTION].items())),
            verifications=dict(sorted(b.decisions[VERIFY_ACTION].items())),
            searches=dict(sorted(b.decisions[SEARCH_ACTION].items())),
            capture_attempts=b.attempts,
            failure_to_acquire=b.failure_to_acquire,
            quality_refusals=b.quality_refusals,
            failure_to_acquire_rate=rate(b.failure_to_acquire),
            quality_refusal_rate=rate(b.quality_refusals),
            top_refusal_reasons=tuple(
                sorted(b.reasons.items(), key=lambda item: (-item[1], item[0]))[:TOP_REASONS]
            ),
            latency_ms={a: Percentiles.of(b.latency_ms[a]) for a in CAPTURE_ACTIONS},
            applications_decided=dict(sorted(b.decided.items())),
            time_to_decision_s=Percentiles.of(b.decision_s),
        )


@dataclass(frozen=True)
class Backlog:
    """A queue waiting for a supervisor at the end of the window."""

    name: str
    open: int
    age_s: Percentiles
    oldest_age_s: float | None


@dataclass(frozen=True)
class Report:
    since: dt.datetime
    until: dt.datetime
    period: Period
    utc_offset_minutes: int
    rows: tuple[ReportRow, ...]  # by period, then station
    totals: ReportRow
    backlogs: tuple[Backlog, ...]
    applications_by_status: Mapping[str, int]  # of the applications created in the window
    audit_events_read: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "period": self.period,
            "utc_offset_minutes": self.utc_offset_minutes,
            "rows": [_row_dict(row) for row in self.rows],
            "totals": _row_dict(self.totals),
            "backlogs": [
                {
                    "name": b.name,
                    "open": b.open,
                    "age_s": _percentiles_dict(b.age_s),
                    "oldest_age_s": b.oldest_age_s,
                }
                for b in self.backlogs
            ],
            "applications_by_status": dict(self.applications_by_status),
            "audit_events_read": self.audit_events_read,
        }


BacklogSource = Callable[[Session, dt.datetime], Backlog]


def duplicate_review_backlog(session: Session, at: dt.datetime) -> Backlog:
    """Duplicate-identity cases open at ``at`` (opened before it, not resolved by then)."""
    rows = session.execute(
        select(Review.created_at, Review.resolved_at, Review.status).where(Review.created_at < at)
    ).all()
    ages = [
        (at - created).total_seconds()
        for created, resolved, status in rows
        if status == ReviewStatus.OPEN.value or (resolved is not None and resolved >= at)
    ]
    return Backlog("duplicate_reviews", len(ages), Percentiles.of(ages), max(ages, default=None))


# Every queue the report shows; the watchlist-hit queue adds its function here.
BACKLOG_SOURCES: list[BacklogSource] = [duplicate_review_backlog]


def build_report(
    engine: Engine,
    since: dt.datetime,
    until: dt.datetime,
    *,
    period: Period = "day",
    utc_offset_minutes: int = 0,
    backlog_sources: Iterable[BacklogSource] | None = None,
) -> Report:
    """The report of ``[since, until)`` (aware datetimes). Reads the trail in keyset batches
    and the applications' timeline in one query; nothing is written."""
    if since.tzinfo is None or until.tzinfo is None:
        raise ValueError("since and until must carry a time zone")
    if until <= since:
        raise ValueError("until must be after since")
    if period not in ("day", "week"):
        raise ValueError("period must be day or week")
    offset = dt.timedelta(minutes=utc_offset_minutes)
    buckets: dict[tuple[str, str | None, int | None], _Bucket] = defaultdict(_Bucket)

    def label(at: dt.datetime) -> str:
        local = (at + offset).date()
        if period == "day":
            return local.isoformat()
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"

    read = 0
    with Session(engine) as session:
        last_id = 0
        while True:
            rows = session.execute(
                select(*AUDIT_COLUMNS)
                .where(
                    AuditEventRow.id > last_id,
                    AuditEventRow.at >= since,
                    AuditEventRow.at < until,
                    AuditEventRow.action.in_(CAPTURE_ACTIONS),
                )
                .order_by(AuditEventRow.id)
                .limit(AUDIT_BATCH)
            ).all()
            for _, at, station, key_name, key_id, action, decision, outcome, details in rows:
                bucket = buckets[(label(at), station or key_name, key_id)]
                _count(bucket, action, decision, outcome, details or {})
            read += len(rows)
            if len(rows) < AUDIT_BATCH:
                break
            last_id = int(rows[-1][0])
        _count_decisions(session, since, until, label, buckets)
        by_status = Counter(
            status
            for (status,) in session.execute(
                select(ApplicationRow.status).where(
                    ApplicationRow.created_at >= since, ApplicationRow.created_at < until
                )
            )
        )
        sources = BACKLOG_SOURCES if backlog_sources is None else list(backlog_sources)
        backlogs = tuple(source(session, until) for source in sources)
    total = _Bucket()
    for bucket in buckets.values():
        total.merge(bucket)
    ordered = sorted(
        buckets.items(), key=lambda item: (item[0][0], item[0][1] or "", item[0][2] or 0)
    )
    return Report(
        since=since,
        until=until,
        period=period,
        utc_offset_minutes=utc_offset_minutes,
        rows=tuple(ReportRow.of(p, s, k, b) for (p, s, k), b in ordered),
        totals=ReportRow.of(None, None, None, total),
        backlogs=backlogs,
        applications_by_status={s.value: by_status.get(s.value, 0) for s in ApplicationStatus},
        audit_events_read=read,
    )


def _count(
    bucket: _Bucket, action: str, decision: str | None, outcome: str, details: Mapping[str, Any]
) -> None:
    if outcome == "ok":
        bucket.decisions[action][decision or "ok"] += 1
        bucket.attempts += 1
        elapsed = details.get("elapsed_ms")
        if isinstance(elapsed, int | float):
            bucket.latency_ms[action].append(float(elapsed))
        if details.get("probe_usable") is False:  # the counter's probe under the gate
            _refused(bucket, _names(details.get("failing")))
        return
    bucket.decisions[action][outcome] += 1
    if outcome in FAILURE_TO_ACQUIRE:
        bucket.attempts += 1
        bucket.failure_to_acquire += 1
    elif outcome == QUALITY_REFUSAL:
        bucket.attempts += 1
        _refused(bucket, _names(details.get("failing")))


def _refused(bucket: _Bucket, failing: list[str]) -> None:
    if FACE_COUNT_COMPONENT in failing:
        bucket.failure_to_acquire += 1
    else:
        bucket.quality_refusals += 1
        bucket.reasons.update(failing)


def _names(value: Any) -> list[str]:
    return [str(name) for name in value] if isinstance(value, list) else []


def _count_decisions(
    session: Session,
    since: dt.datetime,
    until: dt.datetime,
    label: Callable[[dt.datetime], str],
    buckets: dict[tuple[str, str | None, int | None], _Bucket],
) -> None:
    """Applications approved or rejected in the window, at the station that decided, with the
    time from the application's creation."""
    rows = session.execute(
        select(
            ApplicationEventRow.at,
            ApplicationEventRow.station,
            ApplicationEventRow.key_id,
            ApplicationEventRow.to_status,
            ApplicationRow.created_at,
        )
        .join(ApplicationRow, ApplicationRow.id == ApplicationEventRow.application_id)
        .where(
            ApplicationEventRow.at >= since,
            ApplicationEventRow.at < until,
            ApplicationEventRow.to_status.in_(
                [ApplicationStatus.APPROVED.value, ApplicationStatus.REJECTED.value]
            ),
        )
    ).all()
    for at, station, key_id, to_status, created_at in rows:
        bucket = buckets[(label(at), station, key_id)]
        bucket.decided[to_status] += 1
        bucket.decision_s.append((at - created_at).total_seconds())


def _percentiles_dict(p: Percentiles) -> dict[str, Any]:
    return {"count": p.count, "median": p.median, "p90": p.p90}


def _row_dict(row: ReportRow) -> dict[str, Any]:
    return {
        "period": row.period,
        "station": row.station,
        "key_id": row.key_id,
        "enrollments": dict(row.enrollments),
        "verifications": dict(row.verifications),
        "searches": dict(row.searches),
        "capture_attempts": row.capture_attempts,
        "failure_to_acquire": row.failure_to_acquire,
        "quality_refusals": row.quality_refusals,
        "failure_to_acquire_rate": row.failure_to_acquire_rate,
        "quality_refusal_rate": row.quality_refusal_rate,
        "top_refusal_reasons": [{"reason": r, "count": c} for r, c in row.top_refusal_reasons],
        "latency_ms": {a: _percentiles_dict(p) for a, p in row.latency_ms.items()},
        "applications_decided": dict(row.applications_decided),
        "time_to_decision_s": _percentiles_dict(row.time_to_decision_s),
    }


CSV_COLUMNS: Final = (
    "period",
    "station",
    "key_id",
    "enrollments",
    "enroll_accepted",
    "enroll_pending_review",
    "verifications",
    "verify_match",
    "verify_no_match",
    "verify_inconclusive",
    "searches",
    "search_identified",
    "search_not_identified",
    "capture_attempts",
    "failure_to_acquire",
    "failure_to_acquire_rate",
    "quality_refusals",
    "quality_refusal_rate",
    "top_refusal_reasons",
    "enroll_latency_ms_median",
    "enroll_latency_ms_p90",
    "verify_latency_ms_median",
    "verify_latency_ms_p90",
    "search_latency_ms_median",
    "search_latency_ms_p90",
    "applications_approved",
    "applications_rejected",
    "time_to_decision_s_median",
    "time_to_decision_s_p90",
)


def report_csv(report: Report) -> str:
    """One line per period and station, then the totals (period ``total``); the backlogs are
    point-in-time figures and stay in the JSON form."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in (*report.rows, report.totals):
        latency = row.latency_ms
        writer.writerow(
            [
                row.period if row.period is not None else "total",
                row.station or "",
                "" if row.key_id is None else row.key_id,
                sum(row.enrollments.values()),
                row.enrollments.get("accepted", 0),
                row.enrollments.get("pending_review", 0),
                sum(row.verifications.values()),
                row.verifications.get("match", 0),
                row.verifications.get("no_match", 0),
                row.verifications.get("inconclusive", 0),
                sum(row.searches.values()),
                row.searches.get("identified", 0),
                row.searches.get("not_identified", 0),
                row.capture_attempts,
                row.failure_to_acquire,
                _blank(row.failure_to_acquire_rate),
                row.quality_refusals,
                _blank(row.quality_refusal_rate),
                ";".join(f"{reason}:{count}" for reason, count in row.top_refusal_reasons),
                _blank(latency[ENROLL_ACTION].median),
                _blank(latency[ENROLL_ACTION].p90),
                _blank(latency[VERIFY_ACTION].median),
                _blank(latency[VERIFY_ACTION].p90),
                _blank(latency[SEARCH_ACTION].median),
                _blank(latency[SEARCH_ACTION].p90),
                row.applications_decided.get("approved", 0),
                row.applications_decided.get("rejected", 0),
                _blank(row.time_to_decision_s.median),
                _blank(row.time_to_decision_s.p90),
            ]
        )
    return out.getvalue()


def _blank(value: float | None) -> Any:
    return "" if value is None else value
