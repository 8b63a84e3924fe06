"""What every benchmark run writes: the machine, the versions, the date and the exact command,
beside the raw figures (JSON), a table a person reads (Markdown) and plots (PNG).

Files go to one output folder (``benchmarks/results`` by default) under timestamped names,
``<name>-<YYYYmmddTHHMMSSZ>.{json,md}`` and ``...-<plot>.png``, plus stable copies
``latest-<name>.{json,md}`` and ``latest-<name>-<plot>.png`` that always hold the newest run.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import shlex
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_OUT_DIR = Path(__file__).resolve().parent / "results"

# The photos in ../shared/faces (its README): every report measured on them carries this line.
DATA_CAVEAT = (
    "The data holds no Southeast Asian faces in any number and no children: these figures say "
    "nothing about accuracy for the people an Indonesian immigration office mostly serves."
)


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo ("unknown" where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_total_bytes() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def rss_bytes() -> int:
    """Resident set size of this process now (0 where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def load_average() -> tuple[float, float, float]:
    try:
        return os.getloadavg()
    except OSError:
        return (0.0, 0.0, 0.0)


def machine_info() -> dict[str, Any]:
    return {
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count() or 0,
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0,
        "memory_total_bytes": memory_total_bytes(),
        "platform": platform.platform(),
        "load_average_at_start": list(load_average()),
    }


def _version(module: str, attribute: str = "__version__") -> str:
    try:
        imported = __import__(module)
        return str(getattr(imported, attribute, "unknown"))
    except Exception:  # an absent or broken package is reported, not fatal
        return "not installed"


def versions() -> dict[str, str]:
    import numpy as np

    found = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "faiss": _version("faiss"),
        "dlib": _version("dlib"),
        "opencv": _version("cv2"),
        "pillow": _version("PIL"),
    }
    try:
        from threadpoolctl import threadpool_info

        blas = [f"{i.get('internal_api')} {i.get('version')}" for i in threadpool_info()]
        found["thread_pools"] = ", ".join(sorted(set(blas)))
    except ImportError:
        found["thread_pools"] = "threadpoolctl not installed"
    return found


def command_line(argv: Sequence[str] | None = None) -> str:
    """The exact command, as typed (``wajah bench ...`` when run through the CLI)."""
    args = list(sys.argv if argv is None else argv)
    if not args:
        return ""
    program = args[0]
    if Path(program).name in ("wajah", "__main__.py", "cli.py"):
        program = "wajah"
    if not program.startswith("wajah"):
        program = shlex.quote(program)
    return " ".join([program, *(shlex.quote(a) for a in args[1:])])


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class RunContext:
    """Identity of one benchmark run; created when it starts."""

    name: str  # "match", "accuracy", "pipeline"
    command: str
    started_at: dt.datetime = field(default_factory=utc_now)
    machine: dict[str, Any] = field(default_factory=machine_info)
    software: dict[str, str] = field(default_factory=versions)

    @property
    def stamp(self) -> str:
        return self.started_at.strftime("%Y%m%dT%H%M%SZ")

    def header(self) -> dict[str, Any]:
        now = utc_now()
        return {
            "benchmark": self.name,
            "command": self.command,
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "finished_at": now.isoformat(timespec="seconds"),
            "duration_s": round((now - self.started_at).total_seconds(), 1),
            "machine": self.machine,
            "versions": self.software,
        }

    def markdown_header(self, title: str) -> str:
        header = self.header()
        machine = self.machine
        memory_gib = machine["memory_total_bytes"] / 2**30
        lines = [
            f"# {title}",
            "",
            f"- Date: {header['started_at']} (took {header['duration_s']} s)",
            f"- Command: `{self.command}`",
            f"- Machine: {machine['cpu_model']}, {machine['logical_cores']} logical cores, "
            f"{memory_gib:.1f} GiB; load average at start "
            + "/".join(f"{v:.2f}" for v in machine["load_average_at_start"]),
            "- Versions: " + ", ".join(f"{k} {v}" for k, v in self.software.items()),
            "",
        ]
        return "\n".join(lines)


@dataclass(frozen=True)
class WrittenFiles:
    json_path: Path
    markdown_path: Path
    plots: tuple[Path, ...]
    latest_json: Path
    latest_markdown: Path


def write_report(
    out_dir: Path,
    context: RunContext,
    results: dict[str, Any],
    markdown_body: str,
    title: str,
    plots: dict[str, Any] | None = None,
) -> WrittenFiles:
    """Write ``results`` (with the run header) as JSON, the Markdown report and the plots.

    ``plots`` maps a short plot name to a matplotlib Figure; each is saved as PNG and closed.
    Returns the paths written. The JSON document is also what ``--json`` prints.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    base = f"{context.name}-{context.stamp}"
    plot_paths: list[Path] = []
    for plot_name, figure in (plots or {}).items():
        path = out_dir / f"{base}-{plot_name}.png"
        figure.savefig(path, dpi=110, bbox_inches="tight")
        import matplotlib.pyplot as plt

        plt.close(figure)
        shutil.copyfile(path, out_dir / f"latest-{context.name}-{plot_name}.png")
        plot_paths.append(path)
    document = {**context.header(), "plots": [p.name for p in plot_paths], "results": results}
    json_path = out_dir / f"{base}.json"
    json_path.write_text(json.dumps(to_jsonable(document), indent=2, ensure_ascii=False) + "\n")
    markdown = context.markdown_header(title) + markdown_body
    if plot_paths:
        markdown += "\n## Plots\n\n" + "\n".join(f"![{p.stem}]({p.name})" for p in plot_paths)
    markdown_path = out_dir / f"{base}.md"
    markdown_path.write_text(markdown.rstrip() + "\n")
    latest_json = out_dir / f"latest-{context.name}.json"
    latest_markdown = out_dir / f"latest-{context.name}.md"
    shutil.copyfile(json_path, latest_json)
    shutil.copyfile(markdown_path, latest_markdown)
    return WrittenFiles(json_path, markdown_path, tuple(plot_paths), latest_json, latest_markdown)


def to_jsonable(value: Any) -> Any:
    """numpy scalars and arrays, Paths and tuples to plain JSON types; NaN/inf to None."""
    import numpy as np  # here, not at the top: ``wajah --help`` imports this module

    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    return value


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |"]
    lines.append("|" + "|".join("---" for _ in headers) + "|")
    lines.extend("| " + " | ".join(cell(v) for v in row) + " |" for row in rows)
    return "\n".join(lines) + "\n"


def ratio(value: float, baseline: float) -> float | None:
    """value / baseline, None when the baseline is zero or missing."""
    if not baseline or not math.isfinite(baseline) or not math.isfinite(value):
        return None
    return value / baseline


def with_ratio(value: float, baseline: float, unit: str = "", digits: int = 3) -> str:
    """``"12.3 ms (4.10x)"``: a figure beside its ratio to the run's baseline."""
    found = ratio(value, baseline)
    shown = f"{value:.{digits}g}{(' ' + unit) if unit else ''}"
    return f"{shown} ({found:.2f}x)" if found is not None else shown


def verdict(met: bool) -> str:
    return "MET" if met else "NOT MET"
