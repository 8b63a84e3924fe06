"""``wajah bench ...``: the benchmarks for operations, a plug-in of the ``wajah`` command.

Every subcommand writes JSON, Markdown and PNG files (timestamped, plus ``latest-<name>.*``) to
``--out`` (default ``benchmarks/results``), shows progress on stderr, and with ``--json`` prints
the JSON document on stdout.

``benchmarks`` is the top layer: it may call the api (the ``api`` benchmark starts the real
service), the api never imports it. So the command is not registered by ``api.cli.main``: the
package's metadata names :func:`register` in the ``wajah.commands`` entry-point group
(``pyproject.toml``), which ``api.cli.main`` reads at start-up.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from wajah.api.cli.support import emit_json, fail, stderr_console
from wajah.benchmarks.report import (
    DEFAULT_OUT_DIR,
    RunContext,
    WrittenFiles,
    command_line,
    write_report,
)

if TYPE_CHECKING:  # ``wajah --help`` imports this module: numpy is imported where used
    import numpy as np

bench_app = typer.Typer(
    help="Benchmarks for operations: 1:N search (match), accuracy on labeled photos (accuracy), "
    "face-engine throughput (pipeline), the HTTP service under load (api) and the Milvus "
    "backend beside FAISS (milvus), the bulk import (import). Results go to benchmarks/results.",
    no_args_is_help=True,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
OutOption = Annotated[Path, typer.Option("--out", help="Folder for the result files.")]
FacesOption = Annotated[
    Path | None,
    typer.Option(
        "--faces-dir",
        help="Labeled photos (default: $WAJAH_FACES_DIR or ../shared/faces).",
        show_default=False,
    ),
]
CacheOption = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        help="Per-photo template cache (default: the user cache dir, "
        "outside the repository: templates are biometric data).",
        show_default=False,
    ),
]


def _faces_dir(given: Path | None) -> Path:
    # The edge resolves the default; the benchmark code takes the folder as an argument.
    configured = os.environ.get("WAJAH_FACES_DIR")
    folder = given or (Path(configured) if configured else PROJECT_ROOT.parent / "shared" / "faces")
    if not folder.is_dir():
        fail(f"labeled photo folder not found: {folder} (use --faces-dir or WAJAH_FACES_DIR)")
    return folder


def _cache_dir(given: Path | None) -> Path:
    from wajah.benchmarks.acquisition import default_cache_dir

    return given or default_cache_dir()


@contextmanager
def _progress() -> Iterator[tuple[Callable[[str], None], Callable[[int, int], None]]]:
    """(step(text), count(done, total)) callbacks drawing one rich progress bar on stderr."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=stderr_console,
        transient=False,
    ) as bar:
        task = bar.add_task("starting", total=None)

        def step(text: str) -> None:
            bar.update(task, description=text)

        def count(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield step, count


def _finish(
    context: RunContext,
    out: Path,
    outcome: tuple[dict[str, Any], str, dict[str, Any]],
    title: str,
    as_json: bool,
) -> None:
    results, markdown, plots = outcome
    written: WrittenFiles = write_report(out, context, results, markdown, title, plots)
    if as_json:
        emit_json(json.loads(written.json_path.read_text()))
        return
    sys.stdout.write(written.markdown_path.read_text())  # unwrapped: it is a Markdown file
    stderr_console.print(
        f"wrote {written.json_path}, {written.markdown_path} and {len(written.plots)} plot(s)",
        markup=False,
        highlight=False,
    )


@bench_app.command("match")
def match_command(
    as_json: JsonOption = False,
    out: OutOption = DEFAULT_OUT_DIR,
    quick: Annotated[
        bool, typer.Option("--quick", help="Gallery sizes 10k and 100k only.")
    ] = False,
    with_10m: Annotated[
        bool,
        typer.Option(
            "--with-10m", help="Also build and measure a 10M sq8 gallery (several minutes, ~3 GB)."
        ),
    ] = False,
    sizes: Annotated[
        str | None,
        typer.Option("--sizes", help="Comma-separated gallery sizes (overrides --quick)."),
    ] = None,
    kinds: Annotated[str, typer.Option("--kinds", help="GalleryIndex kinds to measure.")] = (
        "flat,sq8,ivf,ivfpq,hnsw"
    ),
    single_queries: Annotated[int, typer.Option(help="Single queries timed per method.")] = 200,
    hnsw_max_size: Annotated[int, typer.Option(help="Skip HNSW above this gallery size.")] = (
        100_000
    ),
    real: Annotated[
        bool,
        typer.Option(
            "--real/--no-real",
            help="Model galleries on real templates (from the accuracy cache, "
            "else computed from LFW) as well as uniform vectors.",
        ),
    ] = True,
    real_photos: Annotated[
        int, typer.Option(help="Real photos to embed when the cache holds too few.")
    ] = 800,
    bandwidth_mb: Annotated[int, typer.Option(help="Array size for the bandwidth test.")] = 1024,
    faces_dir: FacesOption = None,
    cache_dir: CacheOption = None,
) -> None:
    """1:N search latency, throughput, recall, memory of every index kind vs exact search and
    the memory-bandwidth floor."""
    from wajah.benchmarks.galleries import TemplateModel, fit_real
    from wajah.benchmarks.match import MatchOptions, models_for_run, run_match
    from wajah.matcher.config import INDEX_KINDS, IndexKind

    context = RunContext("match", command_line())
    chosen_kinds: list[IndexKind] = []
    for name in (k.strip() for k in kinds.split(",") if k.strip()):
        kind = next((known for known in INDEX_KINDS if known == name), None)
        if kind is None:
            fail(f"unknown index kind {name!r}; choose from {', '.join(INDEX_KINDS)}")
        chosen_kinds.append(kind)
    if sizes:
        try:
            chosen_sizes = tuple(int(s.replace("_", "")) for s in sizes.split(","))
        except ValueError:
            fail(f"--sizes must be comma-separated integers, got {sizes!r}")
    else:
        chosen_sizes = (10_000, 100_000) if quick else (10_000, 100_000, 1_000_000)
    options = MatchOptions(
        sizes=chosen_sizes,
        kinds=tuple(chosen_kinds),
        single_queries=single_queries,
        hnsw_max_size=hnsw_max_size,
        with_10m=with_10m,
        bandwidth_bytes=bandwidth_mb << 20,
    )
    with _progress() as (step, count):
        model: TemplateModel | None = None
        if real:
            step("real templates")
            vectors, identities = _real_templates(
                _faces_dir(faces_dir), _cache_dir(cache_dir), real_photos, count
            )
            model = fit_real(vectors, identities)
        outcome = run_match(models_for_run(model), options, step)
    if model is not None:
        outcome[0]["real_templates"] = int(vectors.shape[0])
    _finish(context, out, outcome, "Wajah 1:N search benchmark", as_json)


def _real_templates(
    faces_dir: Path, cache_dir: Path, wanted: int, count: Callable[[int, int], None]
) -> tuple[np.ndarray, list[str]]:
    """Templates of LFW photos: every one already in the cache, else the first ``wanted``."""
    import numpy as np

    from wajah.benchmarks.acquisition import acquire
    from wajah.benchmarks.studies import cached_templates
    from wajah.biometric.datasets import list_labeled_photos

    photos = list_labeled_photos(faces_dir / "lfw_deepfunneled")
    vectors, identities = cached_templates(photos, cache_dir)
    if len(vectors) < min(wanted, 200):
        run = acquire([p.path for p in photos[:wanted]], cache_dir, 2, count)
        vectors, identities = [], []
        for photo, outcome in zip(photos[:wanted], run.outcomes, strict=True):
            if outcome.template is not None:
                vectors.append(np.asarray(outcome.template, dtype=np.float32))
                identities.append(photo.identity)
    if len(vectors) < 50:
        fail("too few real templates to model a gallery; run with --no-real")
    return np.stack(vectors), identities


@bench_app.command("accuracy")
def accuracy_command(
    data: Annotated[
        Path,
        typer.Option(
            "--data", help="Labeled folder (manifest.csv or one sub-folder per identity)."
        ),
    ],
    pairs: Annotated[
        Path | None,
        typer.Option("--pairs", help="LFW-format pairs file: adds the 10-fold LFW protocol."),
    ] = None,
    limit_identities: Annotated[
        int | None,
        typer.Option(
            "--limit-identities", help="Use this many identities (the pairs file's first)."
        ),
    ] = None,
    workers: Annotated[int, typer.Option(help="Worker processes for embedding.")] = 2,
    bootstrap: Annotated[int, typer.Option(help="Subject-bootstrap replicates.")] = 200,
    as_json: JsonOption = False,
    out: OutOption = DEFAULT_OUT_DIR,
    cache_dir: CacheOption = None,
) -> None:
    """FTA/FTE, score distributions, DET, EER, FNMR at FMR 1e-2..1e-4 with subject-bootstrap
    CIs, 1:N rank-1 and FNIR at FPIR; Wajah beside the plain dlib pipeline."""
    from wajah.benchmarks.accuracy import AccuracyOptions, run_accuracy

    if not data.is_dir():
        fail(f"not a folder: {data}")
    if pairs is not None and not pairs.is_file():
        fail(f"pairs file not found: {pairs}")
    context = RunContext("accuracy", command_line())
    options = AccuracyOptions(
        data_dir=data,
        cache_dir=_cache_dir(cache_dir),
        pairs_file=pairs,
        limit_identities=limit_identities,
        workers=workers,
        bootstrap_replicates=bootstrap,
    )
    with _progress() as (step, count):
        step("photos (both pipelines)")
        outcome = run_accuracy(options, count)
    _finish(context, out, outcome, f"Wajah accuracy benchmark: {data.name}", as_json)


@bench_app.command("pipeline")
def pipeline_command(
    as_json: JsonOption = False,
    out: OutOption = DEFAULT_OUT_DIR,
    small: Annotated[int, typer.Option(help="Small (250 px) photos.")] = 48,
    large: Annotated[int, typer.Option(help="Large photos (long side >= 2000 px).")] = 12,
    faces_dir: FacesOption = None,
) -> None:
    """Per-stage time (median/p95) and photos per second with 1 and 2 worker processes."""
    from wajah.benchmarks.pipeline import PipelineOptions, run_pipeline

    context = RunContext("pipeline", command_line())
    options = PipelineOptions(
        faces_dir=_faces_dir(faces_dir), small_photos=small, large_photos=large
    )
    with _progress() as (step, _):
        outcome = run_pipeline(options, step)
    _finish(context, out, outcome, "Wajah face-engine pipeline benchmark", as_json)


@bench_app.command("milvus")
def milvus_command(
    out: OutOption = DEFAULT_OUT_DIR,
    size: Annotated[int, typer.Option(help="Templates in the gallery.")] = 1_000_000,
    nprobe: Annotated[
        str, typer.Option(help="Comma-separated IVF lists visited per Milvus segment.")
    ] = "64,256",
    mates: Annotated[int, typer.Option(help="Mated probes drawn (from a 1M gallery).")] = 2_000,
) -> None:
    """The "milvus" kind (milvus-lite here) beside FAISS flat and ivfpq on one gallery:
    build time, memory, p50/p99, recall@10 and mates lost against exact search."""
    from wajah.benchmarks.milvus_1m import main

    probes = [part.strip() for part in nprobe.split(",") if part.strip()]
    main(["--size", str(size), "--mates", str(mates), "--out", str(out), "--nprobe", *probes])


@bench_app.command("api")
def api_command(
    as_json: JsonOption = False,
    out: OutOption = DEFAULT_OUT_DIR,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help="A running `wajah serve` on loopback (needs --data-dir for its admin key); "
            "default: start one on 127.0.0.1, a free port, a fresh temporary data directory.",
            show_default=False,
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="The server's data directory (default: a fresh temporary one).",
            show_default=False,
        ),
    ] = None,
    gallery: Annotated[int, typer.Option(help="Subjects enrolled through the API.")] = 200,
    requests: Annotated[
        int, typer.Option(help="Requests per endpoint and concurrency level.")
    ] = 200,
    concurrency: Annotated[
        str, typer.Option(help="Comma-separated numbers of concurrent clients.")
    ] = "1,2,4,8",
    distractors: Annotated[
        int,
        typer.Option(
            help="Then grow the gallery by this many synthetic subjects written into the store "
            "(only in a data directory the benchmark created; 0 = skip)."
        ),
    ] = 10_000,
    total_timeout: Annotated[
        float, typer.Option("--total-timeout", help="Seconds for the whole run.")
    ] = 1800.0,
    quick: Annotated[
        bool,
        typer.Option("--quick", help="5 subjects, 10 requests, 1 and 2 clients, no distractors."),
    ] = False,
    faces_dir: FacesOption = None,
    cache_dir: CacheOption = None,
) -> None:
    """The HTTP service under load: verify, identify and quality latency percentiles,
    throughput and errors by type from 1..8 concurrent clients, beside GET /healthz."""
    from wajah.benchmarks.api_load import ApiLoadOptions, check_loopback, run_api_load

    context = RunContext("api", command_line())
    if url is not None:
        try:
            check_loopback(url)
        except ValueError as error:
            fail(str(error))
        if data_dir is None:
            fail("--url needs --data-dir (the server's data directory, for its admin key)")
    try:
        levels = tuple(int(c) for c in concurrency.split(",") if c.strip())
    except ValueError:
        fail(f"--concurrency must be comma-separated integers, got {concurrency!r}")
    if not levels or min(levels) < 1 or gallery < 2 or requests < 1:
        fail("need at least 1 client, 2 subjects and 1 request")
    if quick:
        gallery, requests, levels, distractors = 5, 10, (1, 2), 0
    photos = _faces_dir(faces_dir)
    with _progress() as (step, count):
        model = None
        if distractors and url is None and data_dir is None:
            from wajah.benchmarks.galleries import fit_real

            step("real templates (the distractors' model)")
            vectors, identities = _real_templates(photos, _cache_dir(cache_dir), 800, count)
            model = fit_real(vectors, identities)
        options = ApiLoadOptions(
            faces_dir=photos,
            url=url.rstrip("/") if url else None,
            data_dir=data_dir,
            gallery_size=gallery,
            requests=requests,
            concurrency=levels,
            distractors=distractors,
            distractor_model=model,
            total_timeout_s=total_timeout,
        )
        outcome = run_api_load(options, step, count)
    _finish(context, out, outcome, "Wajah HTTP API load benchmark", as_json)


@bench_app.command("reports")
def reports_command(
    as_json: JsonOption = False,
    out: OutOption = DEFAULT_OUT_DIR,
    events: Annotated[int, typer.Option(help="Audit events to seed.", min=100)] = 100_000,
    repeats: Annotated[int, typer.Option(help="Timed runs of each step.", min=1)] = 3,
) -> None:
    """The operations report's computation time over a seeded audit trail (issue 17)."""
    import tempfile

    from wajah.benchmarks.reports_timing import markdown, run

    context = RunContext("reports", command_line())
    with tempfile.TemporaryDirectory(prefix="wajah-report-bench-") as scratch:
        results = run(events, Path(scratch), repeats)
    _finish(context, out, (results, markdown(results), {}), "Operations report timing", as_json)


@bench_app.command("import")
def import_command(
    as_json: JsonOption = False,
    out: OutOption = DEFAULT_OUT_DIR,
    faces_dir: FacesOption = None,
    photos: Annotated[int, typer.Option(help="LFW photos to import.", min=10)] = 450,
    rounds: Annotated[int, typer.Option(help="Rounds (face work alone, then import).", min=1)] = 2,
    workers: Annotated[int, typer.Option(help="Face worker processes.", min=1)] = 2,
) -> None:
    """`wajah import`'s throughput beside the face work alone in the same run (issue 14)."""
    from wajah.benchmarks.import_throughput import markdown, run

    folder = _faces_dir(faces_dir)
    context = RunContext("import", command_line())
    with _progress() as (step, _):
        try:
            results = run(folder, photos, rounds, workers, step)
        except ValueError as error:
            fail(str(error))
    _finish(context, out, (results, markdown(results), {}), "wajah import throughput", as_json)


def register(app: typer.Typer) -> None:
    """The ``wajah.commands`` entry point: adds ``wajah bench`` to the ``wajah`` command."""
    app.add_typer(bench_app, name="bench")
