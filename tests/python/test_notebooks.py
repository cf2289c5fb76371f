# SPDX-License-Identifier: GPL-3.0-or-later
"""The notebooks are committed clean; `make test` executes them (nbmake)."""

import json
import pathlib

import pytest

NOTEBOOKS = pathlib.Path(__file__).resolve().parents[2] / "notebooks"
EXPECTED = {"quickstart.ipynb", "tuning.ipynb", "history.ipynb"}


def _notebooks():
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def test_the_three_notebooks_exist():
    assert EXPECTED <= {p.name for p in _notebooks()}


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    nb = json.loads(path.read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code, "a notebook without code"
    for i, cell in enumerate(code):
        assert cell.get("outputs") == [], f"cell {i} has outputs"
        assert cell.get("execution_count") is None, f"cell {i} was run"


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.name)
def test_notebook_uses_a_headless_backend_before_plotting(path):
    source = "\n".join("".join(c["source"]) for c in
                       json.loads(path.read_text())["cells"])
    if "plot_" in source:
        assert 'matplotlib.use("Agg")' in source


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.name)
def test_notebook_carries_the_licence(path):
    cells = json.loads(path.read_text())["cells"]
    first = next(c for c in cells if c["cell_type"] == "code")
    assert "".join(first["source"]).startswith(
        "# SPDX-License-Identifier: GPL-3.0-or-later")
