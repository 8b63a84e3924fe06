"""``wajah`` commands over faces and the gallery: enroll, verify, identify, calibrate. Each
builds the settings at the edge and the service from them (the records the gallery keeps are
in :mod:`wajah.api.cli.records`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from wajah.api.cli.support import (
    Exit,
    JsonOption,
    audit_cli_write,
    cli_actor,
    emit_json,
    fail,
    progress_bar,
    run_guarded,
    service_from_settings,
    stdout_console,
)
from wajah.matcher.modes import IdentifyMode  # light: typer reads --mode's type

# The settings, the engine, the store, the index and the HTTP models (numpy, OpenCV, dlib,
# SQLAlchemy...) are imported inside the commands that use them, so that registering every
# command costs little and a one-shot command starts quickly.
if TYPE_CHECKING:
    from wajah.enrollment.records import Actor
    from wajah.enrollment.service import EnrollmentOutcome, MatchCandidate, RankedMatch


def _actor(station: str) -> Actor:
    from wajah.enrollment.records import Actor

    return Actor(station=station)


def candidate_to_dict(candidate: MatchCandidate) -> dict[str, Any]:
    return {
        "subject_id": candidate.subject_ref,
        "score": round(candidate.score, 4),
        "status": candidate.status,
    }


def enrollment_to_dict(outcome: EnrollmentOutcome) -> dict[str, Any]:
    return {
        "status": outcome.status.value,
        "subject_id": outcome.subject.subject_ref,
        "sample_id": outcome.sample.id if outcome.sample else None,
        "template_id": outcome.template_id,
        "review_id": outcome.review.id if outcome.review else None,
        "candidates": [candidate_to_dict(c) for c in outcome.candidates],
        "duplicate_threshold": outcome.duplicate_threshold,
        "second_capture_advised": outcome.second_capture_advised,
        "reasons": list(outcome.reasons),
        "quality": outcome.quality.to_dict(),
    }


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        fail(f"no such file: {path}")
    except IsADirectoryError:
        fail(f"{path} is a directory, not an image")


def enroll(
    image: Annotated[Path, typer.Argument(help="Photo of the applicant.")],
    subject: Annotated[str, typer.Option("--subject", help="The office's subject id.")],
    name: Annotated[str | None, typer.Option("--name", help="Full name (new subjects).")] = None,
    date_of_birth: Annotated[str | None, typer.Option("--dob", help="YYYY-MM-DD")] = None,
    nationality: Annotated[str | None, typer.Option(help="ISO 3166 alpha-3, e.g. IDN")] = None,
    document_number: Annotated[str | None, typer.Option("--document")] = None,
    source: Annotated[str, typer.Option(help="camera, scan or import")] = "camera",
    profile: Annotated[str, typer.Option(help="Quality profile.")] = "enrollment",
    station: Annotated[str, typer.Option(help="Enrollment station name.")] = "cli",
    json_output: JsonOption = False,
) -> None:
    """Enroll a photo for a subject (creating the subject when --name is given).
    Exit 0 accepted or sent to review, 1 refused by the quality gate."""
    from wajah.biometric.quality import PROFILES
    from wajah.enrollment.errors import SubjectNotFound

    if profile not in PROFILES:
        fail(f"unknown quality profile {profile!r}; choose one of {', '.join(PROFILES)}")
    data = _read(image)

    def body() -> Exit:
        with service_from_settings() as service:
            try:
                service.get_subject_by_ref(subject)
            except SubjectNotFound:
                if name is None:
                    fail(f"subject {subject} does not exist; give --name to create it")
                service.create_subject(subject, name, date_of_birth, nationality, document_number)
                audit_cli_write(service.audit_log, "subject.create", subject_ref=subject)
            outcome = service.enroll(
                subject,
                data,
                source=source,
                station=station,
                profile=profile,
                actor=_actor(station),
            )
            audit_cli_write(
                service.audit_log,
                "face.enroll",
                subject_ref=subject,
                station=station,
                decision=outcome.status.value,
                details={"profile": profile, "source": source},
            )
        payload = enrollment_to_dict(outcome)
        if json_output:
            emit_json(payload)
        else:
            status = outcome.status.value.upper().replace("_", " ")
            stdout_console.print(f"[bold]{status}[/]  subject {subject}")
            for reason in outcome.reasons:
                stdout_console.print(f"  - {reason}")
            for candidate in outcome.candidates:
                stdout_console.print(
                    f"  looks like subject {candidate.subject_ref} "
                    f"(similarity {candidate.score:.3f}): sent to review "
                    f"#{outcome.review.id if outcome.review else '?'}"
                )
        return Exit.NEGATIVE if outcome.status.value == "refused" else Exit.OK

    run_guarded(body)


def verify(
    image: Annotated[Path, typer.Argument(help="Photo of the person at the counter.")],
    subject: Annotated[str, typer.Option("--subject", help="The claimed subject id.")],
    json_output: JsonOption = False,
) -> None:
    """1:1 verification against the claimed subject. Exit 0 match, 1 no match or inconclusive."""
    data = _read(image)

    def body() -> Exit:
        with service_from_settings() as service:
            outcome = service.verify(subject, data, actor=_actor(cli_actor()))
        result = outcome.verification
        payload = {
            "subject_id": subject,
            "decision": result.decision.value,
            "score": round(result.score, 4),
            "threshold": result.threshold,
            "false_match_rate": result.false_match_rate,
            "reasons": list(result.reasons),
            "quality": {
                "usable": outcome.quality.usable,
                "failing": [c.name for c in outcome.quality.failing],
            },
            "timings_ms": {k: round(v, 1) for k, v in outcome.timings_ms.items()},
        }
        if json_output:
            emit_json(payload)
        else:
            colour = {"match": "green", "no_match": "red"}.get(result.decision.value, "yellow")
            stdout_console.print(
                f"[bold {colour}]{result.decision.value.upper()}[/]  "
                f"score {result.score:.3f}, threshold {result.threshold:.3f}"
            )
            for reason in result.reasons:
                stdout_console.print(f"  - {reason}")
        return Exit.OK if result.decision.value == "match" else Exit.NEGATIVE

    run_guarded(body)


def ranked_to_dict(candidate: RankedMatch) -> dict[str, Any]:
    return {
        "rank": candidate.rank,
        "subject_id": candidate.subject_ref,
        "score": round(candidate.score, 4),
        "status": candidate.status,
        "false_positive_identification_rate": candidate.false_positive_identification_rate,
        "clears_threshold": candidate.clears_threshold,
    }


def identify(
    image: Annotated[Path, typer.Argument(help="Photo of the person to search for.")],
    k: Annotated[int, typer.Option("-k", min=1, max=100, help="Candidates to return.")] = 5,
    mode: Annotated[
        IdentifyMode,
        typer.Option(
            help="investigation: the top k always, for review; identification: a decision, "
            "only candidates that clear the threshold."
        ),
    ] = IdentifyMode.INVESTIGATION,
    fpir: Annotated[
        float | None,
        typer.Option(
            min=1e-9, max=0.5, help="FPIR the threshold is set for at the current gallery size."
        ),
    ] = None,
    target_fpir: Annotated[
        float | None,
        typer.Option(min=3, max=100, help="The same as MOSIP's -10·log10(FPIR), e.g. 20."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """1:N search. Exit 0 when a candidate clears the identification threshold, 1 when none
    does (investigation mode still lists the top k for review)."""
    from wajah.matcher.impostor_curve import fpir_from_mosip_target

    if fpir is not None and target_fpir is not None:
        fail("give --fpir or --target-fpir, not both")
    requested = fpir_from_mosip_target(target_fpir) if target_fpir is not None else fpir
    data = _read(image)

    def body() -> Exit:
        with service_from_settings() as service:
            outcome = service.identify(
                data, k, mode=mode, fpir=requested, actor=_actor(cli_actor())
            )
        point = outcome.point
        assert point is not None
        payload = {
            "mode": outcome.mode.value,
            "decision": outcome.decision.value,
            "statement": outcome.statement,
            "candidates": [ranked_to_dict(c) for c in outcome.candidates],
            "threshold": outcome.threshold,
            "false_match_rate": outcome.false_match_rate,
            "target_fpir": point.target_fpir,
            "target_fpir_db": (
                None if point.target_fpir_db is None else round(point.target_fpir_db, 3)
            ),
            "gallery_size": point.gallery_size,
            "threshold_scaled": point.scaled,
            "recapture_advised": not outcome.quality.usable and not outcome.cleared,
            "reasons": list(outcome.reasons),
        }
        if json_output:
            emit_json(payload)
        else:
            colour = {"identified": "green", "not_identified": "red"}.get(
                outcome.decision.value, "yellow"
            )
            stdout_console.print(f"[bold {colour}]{outcome.decision.value.upper()}[/]")
            if outcome.candidates:
                title = (
                    "candidates"
                    if outcome.cleared
                    else "possible candidates for review (none clears the threshold)"
                )
                table = Table("rank", "subject", "similarity", "FPIR", "clears", title=title)
                for candidate in outcome.candidates:
                    rate = candidate.false_positive_identification_rate
                    table.add_row(
                        str(candidate.rank),
                        candidate.subject_ref,
                        f"{candidate.score:.3f}",
                        "n/a" if rate is None else f"{rate:.2g}",
                        "yes" if candidate.clears_threshold else "no",
                    )
                stdout_console.print(table)
            stdout_console.print(outcome.statement)
            for reason in outcome.reasons:
                stdout_console.print(f"  - {reason}")
        return Exit.OK if outcome.cleared else Exit.NEGATIVE

    run_guarded(body)


def calibrate(
    data: Annotated[
        Path,
        typer.Option(
            "--data", help="Labeled photo folder (manifest.csv or one folder per identity)."
        ),
    ],
    target_fmr: Annotated[float, typer.Option(help="1:1 false-match rate target.")] = 1e-3,
    identify_fpir: Annotated[float, typer.Option(help="1:N false-positive target.")] = 1e-2,
    duplicate_fpir: Annotated[float, typer.Option(help="Duplicate-search target.")] = 5e-2,
    gallery_size: Annotated[int, typer.Option(help="Gallery size for 1:N points.")] = 10_000,
    pairs: Annotated[
        Path | None,
        typer.Option(
            help="Only identities named in this LFW pairs file (e.g. the development set)."
        ),
    ] = None,
    max_per_identity: Annotated[int, typer.Option(help="Photos per identity, at most.")] = 6,
    out: Annotated[
        Path | None,
        typer.Option(help="Thresholds JSON to write (default: <data dir>/thresholds.json)."),
    ] = None,
    workers: Annotated[int, typer.Option(help="Face worker processes.")] = 2,
    templates_file: Annotated[
        Path | None,
        typer.Option(
            "--templates",
            help="An .npz of the photos' templates: reused when it exists (same "
            "model tag), written after embedding when it does not.",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Measure genuine and impostor scores on labeled photos and write the thresholds."""
    from wajah.api.engine_setup import engine_config
    from wajah.api.settings import Settings
    from wajah.biometric.datasets import list_labeled_photos, read_lfw_pairs
    from wajah.biometric.pool import EnginePool, PoolConfig
    from wajah.biometric.quality import PROFILES
    from wajah.matcher.photo_calibration import (
        calibrate_thresholds,
        embed_labeled_photos,
        load_labeled_templates,
        save_labeled_templates,
    )
    from wajah.matcher.thresholds import save_thresholds

    if not data.is_dir():
        fail(f"{data} is not a folder")

    def body() -> Exit:
        settings = Settings()
        photos = list_labeled_photos(data)
        if pairs is not None:
            named = {p.first.parent.name for p in read_lfw_pairs(pairs, data)} | {
                p.second.parent.name for p in read_lfw_pairs(pairs, data)
            }
            photos = [p for p in photos if p.identity in named]
        counts: dict[str, int] = {}
        kept = []
        for photo in photos:
            counts[photo.identity] = counts.get(photo.identity, 0) + 1
            if counts[photo.identity] <= max_per_identity:
                kept.append(photo)
        if not kept:
            fail(f"no labeled photos found in {data}")
        if templates_file is not None and templates_file.is_file():
            templates = load_labeled_templates(templates_file)
        else:
            pool = EnginePool(engine_config(settings), PoolConfig(workers=workers, max_pending=8))
            try:
                with progress_bar(f"embedding {len(kept)} photos") as update:
                    templates = embed_labeled_photos(kept, pool, PROFILES["verification"], update)
            finally:
                pool.close()
            if templates_file is not None:
                save_labeled_templates(templates, templates_file)
        thresholds, calibration = calibrate_thresholds(
            templates,
            source=str(data),
            target_fmr=target_fmr,
            identify_fpir=identify_fpir,
            duplicate_fpir=duplicate_fpir,
            gallery_size=gallery_size,
        )
        target = out or settings.ensure_data_dir() / "thresholds.json"
        save_thresholds(thresholds, target)
        payload = {
            "written": str(target),
            **thresholds.to_dict(),
            "genuine_trials": calibration.genuine_trials,
            "impostor_trials": calibration.impostor_trials,
        }
        if json_output:
            emit_json(payload)
        else:
            table = Table("operating point", "threshold", "FMR", "FNMR", title=str(target))
            for name in ("verify", "identify", "duplicate"):
                point = getattr(thresholds, name)
                table.add_row(
                    name,
                    f"{point.threshold:.4f}",
                    f"{point.false_match_rate:.2e}",
                    f"{point.false_non_match_rate:.4f}",
                )
            stdout_console.print(table)
            stdout_console.print(thresholds.calibrated_on)
            stdout_console.print(f"use it with WAJAH_THRESHOLDS_FILE={target}")
        return Exit.OK

    run_guarded(body)
