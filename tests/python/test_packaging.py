# SPDX-License-Identifier: GPL-3.0-or-later
"""Packaging: the sdist carries what the build reads, and ``pip install``
works from a clean clone and from the sdist.

The install tests build the extension twice (about a minute on 2 cores)
into fresh virtual environments, with no network: pip runs with
``--no-index --no-build-isolation --no-deps``, and the new environments
borrow cffi, setuptools, wheel, numpy and pandas from the environment
running the tests (never its tripsense). TRIPSENSE_TEST_SDIST=0 skips
them.
"""
import fnmatch
import os
import re
import shutil
import subprocess
import sys
import tarfile
import venv
from pathlib import Path

import pytest

import tripsense

ROOT = Path(__file__).resolve().parents[2]

install_tests = pytest.mark.skipif(
    os.environ.get("TRIPSENSE_TEST_SDIST") == "0"
    # the sanitized run (make sanitize-python) checks the extension, and
    # compilers started under its preloaded ASan runtime would fail
    or "asan" in os.environ.get("LD_PRELOAD", ""),
    reason="TRIPSENSE_TEST_SDIST=0, or under the sanitizers")


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
                 "bindings/tripsense/_cdef.h", "bindings/tripsense/_hotpath.c",
                 "bindings/tripsense/py.typed"):
        assert _covered(must, pats), f"MANIFEST.in does not ship {must}"


# modules and tests another engineer owns are checked by their own tests
OTHERS = {"simulate.py", "tune.py", "plot.py", "demo.py", "cli.py",
          "test_simulate.py", "test_tune.py", "test_plot.py", "test_demo.py",
          "test_cli.py", "test_notebooks.py"}


def test_every_source_file_starts_with_an_spdx_line():
    files = list((ROOT / "bindings" / "tripsense").glob("*.py")) + \
        list((ROOT / "tests" / "python").glob("*.py")) + \
        [ROOT / "setup.py", ROOT / "bindings" / "tripsense" / "_cdef.h",
         ROOT / "bindings" / "tripsense" / "_hotpath.c"]
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


# What an installed tripsense must do: its own files, not the checkout's or
# the test environment's; a breaker call; a replay; the command line.
SMOKE = """
import sys
from pathlib import Path

import numpy as np

import tripsense

pkg = Path(tripsense.__file__).resolve().parent
assert Path(sys.prefix).resolve() in pkg.parents, pkg
assert (pkg / "py.typed").is_file() and (pkg / "_cdef.h").is_file()
b = tripsense.Breaker("x")
assert b.call(lambda: 41) + 1 == 42
n = 5000
t = 1_795_392_000 * 10**9 + np.arange(n, dtype=np.int64) * 10_000_000
outcome = np.zeros(n, np.int32)
outcome[1000:1100] = 1
r = tripsense.replay({"time": t, "outcome": outcome,
                      "latency_s": np.full(n, 0.01)},
                     consecutive_failures=5, jitter=0)
assert len(r.decisions) == n and r.trips >= 1, r
print("ok", r.trips)
"""


def _run(args, **kw):
    """Run a command with no network for pip, quietly unless it fails."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
               PIP_NO_INPUT="1", PIP_NO_CACHE_DIR="1")
    p = subprocess.run([str(a) for a in args], env=env, capture_output=True,
                       text=True, **kw)
    assert p.returncode == 0, (f"{' '.join(map(str, args))} failed "
                               f"({p.returncode}):\n{p.stdout[-4000:]}"
                               f"\n{p.stderr[-4000:]}")
    return p.stdout


@pytest.fixture(scope="module")
def borrowed(tmp_path_factory):
    """A directory of links to the packages the test environment has (pip,
    setuptools, wheel, cffi, numpy, pandas ...), except tripsense."""
    pytest.importorskip("wheel", reason="pip install wheel (the test extra has it)")
    import cffi

    site = Path(cffi.__file__).resolve().parent.parent
    d = tmp_path_factory.mktemp("borrowed")
    for entry in site.iterdir():
        name = entry.name.lower()
        if name.startswith(("tripsense", "__editable__", "_tripsense", "__pycache__")):
            continue
        if name.endswith(".pth") and name != "distutils-precedence.pth":
            continue  # an editable tripsense would come in through its .pth
        (d / entry.name).symlink_to(entry)
    return d


def _fresh_venv(path, borrowed):
    """A virtual environment that sees borrowed's packages after its own."""
    venv.create(path, with_pip=False, symlinks=True)
    py = path / "bin" / "python"
    purelib = Path(_run([py, "-c", "import sysconfig; "
                         "print(sysconfig.get_paths()['purelib'])"]).strip())
    # a .pth line starting with import runs: addsitedir also reads the
    # borrowed .pth files (setuptools' distutils shim)
    (purelib / "zz_borrowed.pth").write_text(
        f"import site; site.addsitedir({str(borrowed)!r})\n")
    return py


def _pip_install_and_smoke(target, env_dir, borrowed, cwd):
    py = _fresh_venv(env_dir, borrowed)
    _run([py, "-m", "pip", "install", "-q", "--no-build-isolation",
          "--no-deps", target], cwd=cwd)
    out = _run([py, "-c", SMOKE], cwd=cwd)
    assert out.startswith("ok"), out
    _run([env_dir / "bin" / "tripsense", "--help"], cwd=cwd)


@pytest.fixture
def clone(tmp_path):
    """A clean git clone of this checkout's HEAD (what CI starts from)."""
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout (an sdist?), or no git")
    d = tmp_path / "tripsense"
    _run(["git", "clone", "-q", "--no-hardlinks", ROOT, d])
    return d


@install_tests
def test_pip_install_from_a_clean_clone(clone, borrowed, tmp_path):
    _pip_install_and_smoke(clone, tmp_path / "venv", borrowed, tmp_path)


def _sdist(tree, out):
    # setup.py sdist needs neither the network nor the build module;
    # egg_info writes into tree, a throwaway clone
    _run([sys.executable, "setup.py", "-q", "sdist", "-d", out], cwd=tree)
    (tarball,) = Path(out).glob("tripsense-*.tar.gz")
    return tarball


@install_tests
def test_sdist_carries_the_sources_and_installs(clone, borrowed, tmp_path):
    tarball = _sdist(clone, tmp_path / "dist")
    with tarfile.open(tarball) as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    listed = [ln.strip() for ln in (clone / "sources.txt").read_text().splitlines()
              if ln.strip() and not ln.startswith("#")]
    headers = [str(p.relative_to(clone)) for d in ("include", "libcore", "adaptive")
               for p in (clone / d).rglob("*.h")]
    must = listed + headers + [
        "sources.txt", "setup.py", "pyproject.toml", "LICENSE",
        "bindings/tripsense/_cdef.h", "bindings/tripsense/_build_ffi.py",
        "bindings/tripsense/_hotpath.c", "bindings/tripsense/py.typed",
        "bindings/tripsense/__init__.py"]
    missing = sorted(set(must) - names)
    assert not missing, f"the sdist lacks {missing}"
    assert not [n for n in names if n.endswith((".so", ".o"))]
    # install from outside any checkout, as a user would
    _pip_install_and_smoke(tarball, tmp_path / "venv", borrowed, tmp_path)


def test_import_is_light():
    # pandas and matplotlib load only when a DataFrame or plot is asked for
    code = ("import sys, tripsense; from tripsense import *; "
            "print(sorted(m for m in ('pandas', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], check=True,
                         capture_output=True, text=True)
    assert out.stdout.strip() == "[]"
