"""The ``wajah`` command line. Every command takes ``--json`` (one JSON document on stdout)
and exits 0 for success or a positive verdict, 1 for a negative verdict, 2 for bad input or
usage (one readable line on stderr)."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from wajah.api.cli.support import (
    PROFILE_NAMES,
    Exit,
    emit_json,
    error_line,
    fail,
    run_guarded,
    stdout_console,
)
from wajah.biometric.errors import WajahInputError

# ``wajah --help`` and every command's ``--help`` import this module and the command modules
# and nothing heavy (numpy, OpenCV, dlib, ONNX Runtime, SQLAlchemy, pydantic-settings): the
# face engine, the settings and the store are imported inside the command bodies that use
# them (tests/api/test_cli.py holds this).
if TYPE_CHECKING:
    import numpy as np
    from rich.table import Table

    from wajah.biometric.engine import FaceAnalysis, FaceEngine
    from wajah.biometric.quality import QualityProfile, QualityReport

app = typer.Typer(
    name="wajah",
    help="Wajah: face enrollment, 1:1 verification and 1:N search for immigration offices.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
ProfileOption = Annotated[
    str, typer.Option("--profile", help=f"Quality profile: {', '.join(PROFILE_NAMES)}.")
]


def _profile(name: str) -> QualityProfile:
    from wajah.biometric.quality import PROFILES

    if name not in PROFILES:
        fail(f"unknown quality profile {name!r}; choose one of {', '.join(PROFILES)}")
    return PROFILES[name]


def analysis_to_dict(analysis: FaceAnalysis) -> dict[str, Any]:
    image = analysis.image
    return {
        "image": {
            "format": image.format,
            "width": int(image.rgb.shape[1]),
            "height": int(image.rgb.shape[0]),
            "exif_orientation": image.exif_orientation,
        },
        "faces": [
            {
                "box": [f.left, f.top, f.right, f.bottom],
                "score": round(f.score, 4),
                "detector": f.detector,
            }
            for f in analysis.faces
        ],
        "quality": analysis.quality.to_dict(),
        "usable": analysis.quality.usable,
        "timings_ms": {k: round(v, 2) for k, v in analysis.timings_ms.items()},
    }


def _quality_table(title: str, report: QualityReport) -> Table:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in ("component", "value", "threshold", "result", "reason"):
        table.add_column(column)
    for component in report.components:
        value = "—" if component.value is None else f"{component.value:.3g} {component.unit}"
        result = {True: "[green]pass[/]", False: "[red]FAIL[/]", None: "[yellow]n/a[/]"}[
            component.passed
        ]
        table.add_row(component.name, value.strip(), component.threshold, result, component.reason)
    return table


def _annotate(analysis: FaceAnalysis, out: Path) -> None:
    import cv2

    from wajah.biometric.pose import estimate_head_pose

    bgr = cv2.cvtColor(analysis.image.rgb, cv2.COLOR_RGB2BGR)
    thickness = max(1, round(max(bgr.shape[:2]) / 400))
    for index, face in enumerate(analysis.faces):
        colour = (0, 200, 0) if index == 0 else (0, 165, 255)
        cv2.rectangle(bgr, (face.left, face.top), (face.right, face.bottom), colour, thickness)
    if analysis.landmarks is not None:
        for x, y in analysis.landmarks.points68:
            cv2.circle(bgr, (round(x), round(y)), thickness + 1, (255, 200, 0), -1)
        pose = estimate_head_pose(analysis.landmarks.points68, *analysis.image.rgb.shape[:2])
        if pose is not None and analysis.faces:
            face = analysis.faces[0]
            label = f"yaw {pose.yaw_deg:.0f} pitch {pose.pitch_deg:.0f} roll {pose.roll_deg:.0f}"
            cv2.putText(
                bgr,
                label,
                (face.left, max(12, face.top - 6)),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.4 * thickness,
                (0, 200, 0),
                thickness,
            )
    if not cv2.imwrite(str(out), bgr):
        fail(f"cannot write the annotated image to {out} (use a .jpg or .png name)")


@app.command()
def inspect(
    images: Annotated[list[Path], typer.Argument(help="Photos to check.", show_default=False)],
    profile: ProfileOption = "enrollment",
    annotate: Annotated[
        Path | None,
        typer.Option("--annotate", help="Write the (first) photo with boxes, landmarks, pose."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Detect faces and assess quality; exit 0 when every photo is usable."""
    quality_profile = _profile(profile)

    def body() -> Exit:
        from wajah.api.engine_setup import build_engine
        from wajah.api.settings import Settings
        from wajah.biometric.models import licence_notes

        engine = build_engine(Settings(), warm_up=False)
        results: list[dict[str, Any]] = []
        worst = Exit.OK
        for index, path in enumerate(images):
            try:
                analysis = engine.analyse(engine.read(path), quality_profile)
            except WajahInputError as error:
                error_line(f"{path}: {error}")
                results.append(
                    {"path": str(path), "error": type(error).__name__, "detail": str(error)}
                )
                worst = Exit.BAD_INPUT
                continue
            entry = {"path": str(path), **analysis_to_dict(analysis)}
            results.append(entry)
            if not analysis.quality.usable and worst is Exit.OK:
                worst = Exit.NEGATIVE
            if annotate is not None and index == 0:
                _annotate(analysis, annotate)
            if not json_output:
                _print_analysis(path, analysis)
        if json_output:
            emit_json({"profile": profile, "images": results, "models": licence_notes()})
        return worst

    run_guarded(body)


def _print_analysis(path: Path, analysis: FaceAnalysis) -> None:
    faces = (
        ", ".join(
            f"[{f.left},{f.top},{f.right},{f.bottom}] score {f.score:.2f}" for f in analysis.faces
        )
        or "none"
    )
    stdout_console.print(
        f"[bold]{path}[/]  {analysis.image.format} "
        f"{analysis.image.rgb.shape[1]}×{analysis.image.rgb.shape[0]}  "
        f"faces: {faces}"
    )
    stdout_console.print(_quality_table(f"quality ({analysis.quality.profile})", analysis.quality))
    verdict = (
        "[green]USABLE[/]"
        if analysis.quality.usable
        else "[red]NOT USABLE[/]: " + "; ".join(c.reason for c in analysis.quality.failing)
    )
    stdout_console.print(f"verdict: {verdict}\n")


def _capture_template(engine: FaceEngine, path: Path) -> tuple[np.ndarray, FaceAnalysis]:
    from wajah.biometric.quality import PROFILES

    capture = engine.capture(engine.read(path), PROFILES["verification"])
    return capture.template.vector, capture.analysis


@app.command()
def compare(
    image_a: Annotated[Path, typer.Argument(help="First photo.")],
    image_b: Annotated[Path, typer.Argument(help="Second photo.")],
    json_output: JsonOption = False,
) -> None:
    """Are the two photos the same person? Exit 0 same, 1 different."""

    def body() -> Exit:
        import numpy as np

        from wajah.api.engine_setup import build_engine, load_settings_thresholds
        from wajah.api.settings import Settings
        from wajah.biometric.templates import similarity_to_distance

        settings = Settings()
        engine = build_engine(settings, warm_up=False)
        operating_point = load_settings_thresholds(settings).verify
        vector_a, _ = _capture_template(engine, image_a)
        vector_b, _ = _capture_template(engine, image_b)
        similarity = float(np.dot(vector_a, vector_b))
        same = similarity >= operating_point.threshold
        payload = {
            "a": str(image_a),
            "b": str(image_b),
            "similarity": round(similarity, 4),
            "distance": round(similarity_to_distance(similarity), 4),
            "threshold": operating_point.threshold,
            "false_match_rate": operating_point.false_match_rate,
            "decision": "same" if same else "different",
        }
        if json_output:
            emit_json(payload)
        else:
            verdict = "[green]SAME PERSON[/]" if same else "[red]DIFFERENT PEOPLE[/]"
            rate = operating_point.false_match_rate
            rate_text = "unmeasured" if rate is None else f"{rate:.1e}"
            stdout_console.print(
                f"{verdict}  similarity {similarity:.3f} (threshold "
                f"{operating_point.threshold:.3f}, false-match rate {rate_text}), distance "
                f"{payload['distance']:.3f}"
            )
        return Exit.OK if same else Exit.NEGATIVE

    run_guarded(body)


def main() -> None:
    app()


# Commands from other installed packages: each entry point of this group names a function
# ``register(app)`` that adds its commands (``wajah bench`` comes from ``benchmarks.cli`` this
# way, so the api never imports the benchmarks that sit above it).
COMMAND_PLUGIN_GROUP = "wajah.commands"


def _register_plugins() -> None:
    for entry in sorted(entry_points(group=COMMAND_PLUGIN_GROUP), key=lambda e: e.name):
        entry.load()(app)


def _register() -> None:
    from wajah.api.cli import admin, applications, bulk_import, gallery, records, serve

    app.command()(serve.serve)
    app.command("import")(bulk_import.import_photos)
    app.add_typer(admin.keys_app, name="keys")
    app.add_typer(admin.audit_app, name="audit")
    _register_plugins()

    app.command()(gallery.enroll)
    app.command()(gallery.verify)
    app.command()(gallery.identify)
    app.command()(gallery.calibrate)
    app.add_typer(records.subjects_app, name="subjects")
    app.add_typer(records.review_app, name="review")
    app.add_typer(records.index_app, name="index")
    app.add_typer(applications.application_app, name="application")
    app.command()(applications.report)


_register()
