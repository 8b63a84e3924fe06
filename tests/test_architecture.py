"""The shape of the house, checked: the layer and independence contracts in pyproject.toml."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" in result.stdout and "0 broken" in result.stdout


PACKAGES = ("api", "benchmarks", "biometric", "enrollment", "matcher")
BARE_IMPORT = re.compile(rf"^\s*(?:from|import)\s+({'|'.join(PACKAGES)})(?:[.\s]|$)", re.M)


def test_code_imports_the_packages_only_through_the_wajah_namespace() -> None:
    # A bare ``import api`` works from a checkout but not from the installed wheel, and
    # would load a second copy of a module beside its wajah.* twin.
    offenders = []
    for folder in (*PACKAGES, "tests", "tools"):
        for path in (PROJECT_ROOT / folder).rglob("*.py"):
            for match in BARE_IMPORT.finditer(path.read_text()):
                offenders.append(f"{path.relative_to(PROJECT_ROOT)}: {match.group(0).strip()}")
    assert not offenders, offenders


def test_the_namespace_links_every_package() -> None:
    for name in PACKAGES:
        link = PROJECT_ROOT / "wajah" / name
        assert link.is_symlink() and link.resolve() == PROJECT_ROOT / name, name


@pytest.mark.slow
def test_the_wheel_installs_only_the_wajah_namespace(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), "."],
        cwd=PROJECT_ROOT,
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = tmp_path.glob("wajah-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        top_level = archive.read(next(n for n in names if n.endswith("top_level.txt")))
    assert top_level.decode().split() == ["wajah"]
    assert all(name.startswith(("wajah/", "wajah-0.1.0.dist-info/")) for name in names)
    assert "wajah/api/http/console/index.html" in names
    assert "wajah/matcher/default_thresholds.json" in names
