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
        "# NBVAL_CHECK_OUTPUT\nfrom chromo import evaluate, report\n"
        "report.check(accuracy_mean_cell=evaluate.mean_cell_accuracy([1, 2, 3, 4, 5, 6], [1, 2, 0, 0, 5, 6], list('aaaabb')))")]
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
