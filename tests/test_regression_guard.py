"""The nbval regression fails when a checked metric changes: shown on a perturbed copy."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import ROOT, needs_data

SANITIZE = ROOT / "tests" / "regression" / "sanitize.cfg"


def _nbval(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
                           "--nbval-current-env", "--nbval-sanitize-with", str(SANITIZE), str(path)],
                          capture_output=True, text=True, cwd=path.parent)


def _perturb(path: Path, old: str, new: str) -> None:
    nb = json.loads(path.read_text())
    for c in nb["cells"]:
        if "NBVAL_CHECK_OUTPUT" in "".join(c.get("source", "")):
            for o in c.get("outputs", []):
                text = "".join(o.get("text", ""))
                if old in text:
                    o["text"] = text.replace(old, new, 1)
                    path.write_text(json.dumps(nb))
                    return
    raise AssertionError(f"{old!r} not found in a checked output of {path}")


def test_a_changed_metric_fails_the_check(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "# NBVAL_CHECK_OUTPUT\nfrom chromo import evaluate\nfrom chromo.book import report\n"
        "report.check(accuracy_mean_cell=evaluate.mean_cell_accuracy([1, 2, 3, 4, 5, 6], [1, 2, 0, 0, 5, "
        "6], list('aaaabb')))")]
    NotebookClient(nb, kernel_name="python3").execute()
    p = tmp_path / "metric.ipynb"
    nbformat.write(nb, p)
    assert "accuracy_mean_cell: 0.7500" in p.read_text()
    assert _nbval(p).returncode == 0
    _perturb(p, "0.7500", "0.7600")
    r = _nbval(p)
    assert r.returncode != 0 and "0.7600" in r.stdout


@needs_data
def test_perturbed_regression_notebook_fails(tmp_path):
    src = ROOT / "tests" / "regression" / "01_data_pki3.ipynb"
    if not src.exists():
        pytest.skip("no committed regression notebooks")
    p = tmp_path / src.name
    shutil.copy(src, p)
    _perturb(p, "cells: 563", "cells: 564")
    r = _nbval(p)
    assert r.returncode != 0 and "564" in r.stdout


# Perturbations of a computation (not of a stored output): each must make the regression of the
# label-redistribution chapter fail, while the unperturbed copy passes.
PERTURBATIONS = {
    "none": None,
    "cosine distance without normalising the LFVs": (
        "import numpy as np\nimport chromo.matching as M\n_orig = M.pairwise_distance\n"
        "def _bad(A, B, metric='cosine'):\n"
        "    if metric != 'cosine':\n        return _orig(A, B, metric)\n"
        "    a = np.asarray(A, float)\n    a = a / np.linalg.norm(a, axis=1, keepdims=True)\n"
        "    return 1 - a @ np.asarray(B, float).T\n"
        "M.pairwise_distance = _bad"),
    "LRd capacity 3 instead of a homologous pair": (
        "import chromo.matching as M\nM.label_redistribution.__defaults__ = (40, 3)"),
}


@needs_data
@pytest.mark.slow
@pytest.mark.parametrize("name", list(PERTURBATIONS))
def test_perturbed_computation_fails_the_regression(tmp_path, name):
    src = ROOT / "tests" / "regression" / "05_label_redistribution.ipynb"
    nb = nbformat.read(src, as_version=4)
    if PERTURBATIONS[name]:
        nb.cells.insert(0, nbformat.v4.new_code_cell(PERTURBATIONS[name]))
    p = tmp_path / src.name
    nbformat.write(nb, p)
    r = _nbval(p)
    if PERTURBATIONS[name] is None:
        assert r.returncode == 0, r.stdout[-3000:]
    else:
        assert r.returncode != 0
        assert "FAILED" in r.stdout, f"{name}: the regression did not notice\n{r.stdout[-2000:]}"
