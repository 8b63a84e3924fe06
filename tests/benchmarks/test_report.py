"""Report files: names, the machine and version fields, JSON hygiene."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from wajah.benchmarks.report import (
    RunContext,
    markdown_table,
    to_jsonable,
    with_ratio,
    write_report,
)


def test_write_report_writes_every_file_with_the_machine(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots()
    axis.plot([1, 2], [3, 4])
    context = RunContext("demo", "wajah bench demo --json")
    written = write_report(
        tmp_path,
        context,
        {"value": np.float32(1.5), "bad": float("nan")},
        "body text\n",
        "Demo",
        {"line": figure},
    )
    for path in (
        written.json_path,
        written.markdown_path,
        written.latest_json,
        written.latest_markdown,
        *written.plots,
    ):
        assert path.is_file(), path
    assert written.json_path.name.startswith(f"demo-{context.stamp}")
    assert (tmp_path / "latest-demo-line.png").is_file()
    document = json.loads(written.latest_json.read_text())
    assert document["command"] == "wajah bench demo --json"
    assert document["machine"]["logical_cores"] >= 1
    assert document["machine"]["memory_total_bytes"] > 0
    assert document["machine"]["cpu_model"]
    for package in ("python", "numpy", "faiss", "dlib", "opencv"):
        assert document["versions"][package] not in ("", "not installed")
    assert document["results"] == {"value": 1.5, "bad": None}
    markdown = written.markdown_path.read_text()
    assert "Command: `wajah bench demo --json`" in markdown and "body text" in markdown


def test_helpers() -> None:
    assert to_jsonable({"a": (np.int64(2), Path("/x"))}) == {"a": [2, "/x"]}
    assert with_ratio(12.0, 4.0, "ms") == "12 ms (3.00x)"
    assert with_ratio(12.0, 0.0, "ms") == "12 ms"
    table = markdown_table(["a", "b"], [[1, "x|y"]])
    assert table.splitlines()[2] == "| 1 | x\\|y |"
