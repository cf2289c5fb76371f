# SPDX-License-Identifier: GPL-3.0-or-later
"""Packaging: the sdist carries what the build reads; optional full check.

Set TRIPSENSE_TEST_SDIST=1 to build an sdist and pip install it into a
fresh virtual environment (slow: compiles the extension, needs pip).
"""
import fnmatch
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

import tripsense

ROOT = Path(__file__).resolve().parents[2]


def _manifest_patterns():
    pats = []
    for line in (ROOT / "MANIFEST.in").read_text().splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0] == "include":
            pats += [(p, False) for p in words[1:]]
        elif words[0] == "recursive-include":
            pats += [(f"{words[1]}/*{g}", True) for g in words[2:]]
    return pats


def _covered(path, pats):
    return any(fnmatch.fnmatch(path, p) for p, _ in pats)


def test_every_listed_source_exists_and_is_in_the_sdist():
    pats = _manifest_patterns()
    lines = [ln.strip() for ln in (ROOT / "sources.txt").read_text().splitlines()]
    sources = [ln for ln in lines if ln and not ln.startswith("#")]
    assert sources
    for s in sources:
        assert (ROOT / s).is_file(), f"sources.txt lists a missing file {s}"
        assert _covered(s, pats), f"MANIFEST.in does not ship {s}"
    for must in ("sources.txt", "LICENSE", "include/tripsense/tripsense.h",
                 "bindings/tripsense/_cdef.h", "bindings/tripsense/py.typed"):
        assert _covered(must, pats), f"MANIFEST.in does not ship {must}"


# modules and tests another engineer owns are checked by their own tests
OTHERS = {"simulate.py", "tune.py", "plot.py", "demo.py", "cli.py",
          "test_simulate.py", "test_tune.py", "test_plot.py", "test_demo.py",
          "test_cli.py", "test_notebooks.py"}


def test_every_source_file_starts_with_an_spdx_line():
    files = list((ROOT / "bindings" / "tripsense").glob("*.py")) + \
        list((ROOT / "tests" / "python").glob("*.py")) + \
        [ROOT / "setup.py", ROOT / "bindings" / "tripsense" / "_cdef.h"]
    mine = [p for p in files if p.name not in OTHERS]
    assert len(mine) > 15
    for p in mine:
        first = p.read_text().splitlines()[0]
        assert "SPDX-License-Identifier: GPL-3.0-or-later" in first, p


def test_installed_package_is_typed_and_lazy():
    pkg = Path(tripsense.__file__).parent
    assert (pkg / "py.typed").exists()
    assert re.fullmatch(r"\d+\.\d+\.\d+", tripsense.__version__)
    assert {"simulate", "tune", "plot", "demo", "cli"} <= set(dir(tripsense))
    with pytest.raises(AttributeError):
        tripsense.no_such_thing


@pytest.mark.skipif(os.environ.get("TRIPSENSE_TEST_SDIST") != "1",
                    reason="set TRIPSENSE_TEST_SDIST=1 to build and install the sdist")
def test_sdist_builds_and_installs(tmp_path):
    pytest.importorskip("build", reason="pip install build to run this check")
    # build from a copy: egg_info would otherwise write into the checkout
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", "build*", ".venv", "*.egg-info", "__pycache__", "*.db*", "*.so"))
    subprocess.run([sys.executable, "-m", "build", "--sdist", "-o", str(tmp_path),
                    str(src)], check=True)
    (tarball,) = tmp_path.glob("tripsense-*.tar.gz")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", str(tarball)], check=True)
    out = subprocess.run([str(py), "-c", "import tripsense; b = tripsense.Breaker('x');"
                          "print(b.call(lambda: 41) + 1)"],
                         check=True, capture_output=True, text=True, cwd=tmp_path)
    assert out.stdout.strip() == "42"


def test_import_is_light():
    # pandas and matplotlib load only when a DataFrame or plot is asked for
    code = ("import sys, tripsense; from tripsense import *; "
            "print(sorted(m for m in ('pandas', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], check=True,
                         capture_output=True, text=True)
    assert out.stdout.strip() == "[]"
