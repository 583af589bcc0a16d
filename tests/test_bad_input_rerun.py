"""Reruns never write the reference results, `chromo run-notebook` refuses bad input before papermill
starts, and `chromo data verify` reports missing, changed and extra files and refuses a bad list."""
import hashlib
import json
import shutil

import nbformat
import papermill
import pytest

from chromo import cli
from chromo.book import report, rerun
from tests.conftest import DATA, ROOT, needs_data

REGRESS = "tests/regression/regress.yaml"


def _snapshot(*folders):
    """Bytes and mtimes of every file under the folders (the reference results, the inputs)."""
    snap = {}
    for folder in folders:
        for p in sorted(folder.rglob("*")) if folder.exists() else []:
            if p.is_file():
                st = p.stat()
                snap[str(p)] = (st.st_size, st.st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
    return snap


# the reference results of the book and of the regression profile, and the committed fixture they read
REFERENCE = [ROOT / "book" / "results", ROOT / "build" / "regress" / "results",
             ROOT / "tests" / "regression" / "fixture"]


@pytest.fixture
def untouched():
    """Fails the test when anything under book/results, the regress results or the fixture changed."""
    before = _snapshot(*REFERENCE)
    yield
    assert _snapshot(*REFERENCE) == before, "a reference result or input changed"


@pytest.fixture
def no_papermill(monkeypatch):
    """papermill.execute_notebook replaced by a recorder: validation failures must come before it."""
    calls = []

    def fake(src, dst, parameters=None, **kw):
        calls.append((src, dst, parameters))
        nbformat.write(nbformat.v4.new_notebook(), dst)

    monkeypatch.setattr(papermill, "execute_notebook", fake)
    return calls


# --- records: only the main job writes the reference -------------------------------------------------

def test_records_of_a_rerun_go_to_the_rerun_folder(smoke_cfg, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(rerun.REFERENCE_ENV, raising=False)
    monkeypatch.setenv(rerun.RERUN_DIR_ENV, str(tmp_path / "reruns"))
    report.save_records(smoke_cfg, "07_model_comparison", [{"accuracy_mean_cell": 0.5}])
    assert (tmp_path / "reruns" / "smoke" / "records" / "07_model_comparison.json").exists()
    assert not (smoke_cfg.results() / "records").exists()
    assert "a rerun: records written to" in capsys.readouterr().out


def test_records_of_the_main_job_go_to_the_results(smoke_cfg, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(rerun.RERUN_DIR_ENV, str(tmp_path / "reruns"))
    with rerun.reference_env():
        report.save_records(smoke_cfg, "07_model_comparison", [{"accuracy_mean_cell": 0.5}])
    assert not rerun.is_reference_run()
    assert (smoke_cfg.results() / "records" / "07_model_comparison.json").exists()
    assert not (tmp_path / "reruns").exists()
    assert capsys.readouterr().out == ""   # the book's output is unchanged


def test_load_metrics_in_a_rerun_merges_its_records_over_the_reference_and_writes_nothing(smoke_cfg, tmp_path,
                                                                                          monkeypatch):
    monkeypatch.setenv(rerun.RERUN_DIR_ENV, str(tmp_path / "reruns"))
    with rerun.reference_env():
        report.save_records(smoke_cfg, "07_model_comparison", [{"beta": 40}])
        report.save_records(smoke_cfg, "08_karyotype", karyotype={"pki3": {"cells": 6}})
    monkeypatch.delenv(rerun.REFERENCE_ENV, raising=False)
    report.save_records(smoke_cfg, "07_model_comparison", [{"beta": 30}])
    before = _snapshot(smoke_cfg.results())
    m = report.load_metrics(smoke_cfg)
    assert m["records"] == [{"beta": 30}] and m["karyotype"] == {"pki3": {"cells": 6}}
    assert _snapshot(smoke_cfg.results()) == before and not (smoke_cfg.results() / "metrics.json").exists()
    with rerun.reference_env():   # the main job's view: the reference records, written to metrics.json
        assert report.load_metrics(smoke_cfg)["records"] == [{"beta": 40}]
    assert (smoke_cfg.results() / "metrics.json").exists()


def test_a_papermill_kernel_inherits_the_reference_mark(tmp_path):
    """The mechanism the pipeline relies on: papermill's kernel sees the environment of its caller."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("from chromo.book import rerun\n"
                                          "print('reference:', rerun.is_reference_run())")]
    src = tmp_path / "env.ipynb"
    nbformat.write(nb, src)
    for ref, want in ((True, "reference: True"), (False, "reference: False")):
        out = tmp_path / f"out-{ref}.ipynb"
        if ref:
            with rerun.reference_env():
                papermill.execute_notebook(str(src), str(out), kernel_name="python3", progress_bar=False)
        else:
            papermill.execute_notebook(str(src), str(out), kernel_name="python3", progress_bar=False)
        assert want in out.read_text()


# --- chromo run-notebook: bad input, before papermill ------------------------------------------------

BAD = [
    (["05", "-p", "betta", "30"], ["unknown parameter 'betta'", "did you mean 'beta'", "known parameters",
                                   "gamma"]),
    (["05", "-p", "beta", "abc"], ["beta must be an integer, not 'abc'"]),
    (["05", "-p", "beta", "3.5"], ["beta must be an integer, not '3.5'"]),
    (["05", "-p", "beta", "0"], ["beta must be between 1 and 45"]),
    (["05", "-p", "beta", "46"], ["beta must be between 1 and 45"]),
    (["05", "-p", "gamma", "-1"], ["gamma must be greater than 0"]),
    (["05", "-p", "gamma", "x"], ["gamma must be a number, not 'x'"]),
    (["05", "-p", "distance", "manhattan"], ["distance must be one of cosine, euclid"]),
    (["05", "-p", "dataset", "mnist"], ["dataset must be one of pki3, bioimlab"]),
    (["05", "-p", "model", "eresnet-u1c2"], ["model must be"]),
    (["05", "-p", "seed", "one"], ["seed must be an integer"]),
    (["05", "-p", "config", "configs/nope.yaml"], ["config", "not found"]),
    (["05", "-p", "beta", "30", "-p", "beta", "31"], ["given twice"]),
    (["0"], ["ambiguous", "01_data_exploration"]),
    (["99_nothing"], ["no notebook", "known"]),
    (["05", "-p", "config", REGRESS, "--out", "book/notebooks/05_label_redistribution.ipynb"],
     ["inside book", "only the main job"]),
    (["05", "-p", "config", REGRESS, "--out", "build/regress/results/smoke/x.ipynb"], ["only the main job"]),
    (["05", "-p", "config", REGRESS, "--out", "notebooks/05_label_redistribution.ipynb"],
     ["inside notebooks"]),
    (["05", "-p", "config", REGRESS, "--out", "x.txt"], [".ipynb"]),
]


@pytest.mark.parametrize("argv,words", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_run_notebook_refuses_bad_input(argv, words, tmp_path, monkeypatch, capsys, no_papermill, untouched):
    monkeypatch.setenv(rerun.RERUN_DIR_ENV, str(tmp_path / "reruns"))
    monkeypatch.chdir(ROOT)
    assert cli.main(["run-notebook", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("chromo run-notebook: error:"), err
    for w in words:
        assert w in err, (w, err)
    assert no_papermill == [], "papermill started"
    assert not (tmp_path / "reruns").exists()


def test_run_notebook_refuses_to_overwrite_without_force(tmp_path, capsys, no_papermill, untouched):
    out = tmp_path / "mine.ipynb"
    out.write_text("keep me")
    assert cli.main(["run-notebook", "05", "-p", "config", REGRESS, "--out", str(out)]) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert out.read_text() == "keep me" and no_papermill == []
    assert cli.main(["run-notebook", "05", "-p", "config", REGRESS, "--out", str(out), "--force"]) == 0
    assert len(no_papermill) == 1 and out.read_text() != "keep me"


def test_run_notebook_passes_typed_parameters_and_names_its_output(tmp_path, monkeypatch, capsys,
                                                                   no_papermill,
                                                                   untouched):
    monkeypatch.setenv(rerun.RERUN_DIR_ENV, str(tmp_path / "reruns"))
    assert cli.main(["run-notebook", "05_label", "-p", "config", REGRESS, "-p", "beta", "30",
                     "-p", "gamma", "1.2", "-p", "distance", "euclid"]) == 0
    (src, dst, params), = no_papermill
    assert src.endswith("notebooks/05_label_redistribution.ipynb")
    assert params == {"config": REGRESS, "beta": 30, "gamma": 1.2, "distance": "euclid"}
    name = "05_label_redistribution-config_regress-beta_30-gamma_1.2-distance_euclid.ipynb"
    out = tmp_path / "reruns" / name
    assert out.exists()
    assert "records (if any) go to" in capsys.readouterr().out


def test_run_notebook_failure_keeps_the_partial_notebook_aside(tmp_path, monkeypatch, capsys, untouched):
    from papermill.exceptions import PapermillExecutionError

    def failing(src, dst, **kw):
        nbformat.write(nbformat.v4.new_notebook(), dst)
        raise PapermillExecutionError(0, 1, "KeyError", "KeyError", "'x'", [])

    monkeypatch.setattr(papermill, "execute_notebook", failing)
    out = tmp_path / "f.ipynb"
    assert cli.main(["run-notebook", "05", "-p", "config", REGRESS, "--out", str(out)]) == 1
    assert "the notebook failed: KeyError" in capsys.readouterr().err
    assert not out.exists() and (tmp_path / "f.failed.ipynb").exists()


def test_run_notebook_warns_outside_the_papers_gamma_range(tmp_path, monkeypatch, capsys, no_papermill):
    assert cli.main(["run-notebook", "05", "-p", "config", REGRESS, "-p", "gamma", "2.5",
                     "--out", str(tmp_path / "g.ipynb")]) == 0
    assert "outside the paper's range" in capsys.readouterr().err


def test_run_notebook_executes_into_its_own_folder_only(tmp_path, capsys, untouched):
    """A real execution (chapter 07 on the committed fixture, under a minute): the notebook and its
    records in the chosen folder, nothing in book/ or the reference results."""
    src = ROOT / "notebooks" / "07_model_comparison.ipynb"
    src_bytes = src.read_bytes()
    out = tmp_path / "reruns" / "07_beta30.ipynb"
    assert cli.main(["run-notebook", "07", "-p", "config", REGRESS, "-p", "beta", "30", "--out",
                     str(out)]) == 0
    assert "a rerun" in capsys.readouterr().out
    rec = tmp_path / "reruns" / "07_beta30.records" / "smoke" / "records" / "07_model_comparison.json"
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == \
        ["reruns/07_beta30.ipynb", "reruns/07_beta30.records/smoke/records/07_model_comparison.json"]
    assert json.loads(rec.read_text())["records"]
    nb = nbformat.read(out, as_version=4)
    assert "beta = 30" in "".join(c.source for c in nb.cells)
    assert "a rerun: records written to" in out.read_text()
    assert src.read_bytes() == src_bytes


# --- chromo data verify ------------------------------------------------------------------------------

@pytest.fixture
def small_data(tiny_pki3, tmp_path, monkeypatch):
    """A few files in the pki3 layout with a correct SHA256SUMS (sha256sum's format, './' names)."""
    monkeypatch.delenv("CHROMO_DATA", raising=False)
    folder = tiny_pki3 / "pki3"
    files = sorted(p for p in folder.rglob("*") if p.is_file())[:6]
    for p in sorted(q for q in folder.rglob("*") if q.is_file() and q not in files):
        p.unlink()
    for d in sorted((q for q in folder.rglob("*") if q.is_dir()), key=lambda q: -len(q.parts)):
        if not any(d.iterdir()):
            d.rmdir()
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  ./{p.relative_to(folder).as_posix()}" for p
             in files]
    (folder / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    return tiny_pki3, files


def _verify(root, capsys):
    rc = cli.main(["data", "verify", "--dataset", "pki3", "--data-dir", str(root), "--quiet"])
    cap = capsys.readouterr()
    return rc, cap.out + cap.err


def test_verify_passes_on_an_intact_copy(small_data, capsys):
    rc, out = _verify(small_data[0], capsys)
    assert rc == 0 and "6 of 6 files match" in out and "0 extra" in out


def test_verify_reports_a_missing_file(small_data, capsys):
    root, files = small_data
    files[0].unlink()
    rc, out = _verify(root, capsys)
    assert rc == 1 and "MISSING" in out and files[0].name in out and "1 missing" in out


def test_verify_reports_a_changed_file(small_data, capsys):
    root, files = small_data
    files[1].write_bytes(files[1].read_bytes() + b"\0")
    rc, out = _verify(root, capsys)
    assert rc == 1 and "MISMATCH" in out and files[1].name in out


def test_verify_reports_an_added_file(small_data, capsys):
    root, files = small_data
    shutil.copy(files[0], files[0].with_name("added.tiff"))
    rc, out = _verify(root, capsys)
    assert rc == 1 and "EXTRA" in out and "added.tiff" in out and "1 extra" in out


def test_verify_reports_an_added_folder_once(small_data, capsys):
    root, files = small_data
    new = root / "pki3" / "single_clase" / "99999999.1.tiff" / "clase1"
    new.mkdir(parents=True)
    for i in range(3):
        shutil.copy(files[0], new / f"c{i}.tiff")
    (root / "pki3" / "empty").mkdir()
    rc, out = _verify(root, capsys)
    assert rc == 1
    assert "99999999.1.tiff/ (a folder with 3 files" in out and "empty/" in out and "2 extra" in out


def test_verify_reports_hidden_os_files(small_data, capsys):
    root, files = small_data
    (files[0].parent / ".DS_Store").write_bytes(b"\0")
    rc, out = _verify(root, capsys)
    assert rc == 1 and "EXTRA" in out and ".DS_Store" in out


def test_verify_refuses_an_empty_list(small_data, capsys):
    root, _ = small_data
    (root / "pki3" / "SHA256SUMS").write_text("\n")
    rc, out = _verify(root, capsys)
    assert rc == 2 and "lists no files" in out and "match" not in out


def test_verify_refuses_a_malformed_line_and_names_it(small_data, capsys):
    root, _ = small_data
    sums = root / "pki3" / "SHA256SUMS"
    lines = sums.read_text().splitlines()
    lines[1] = "not-a-digest  ./x.tiff"
    sums.write_text("\n".join(lines) + "\n")
    rc, out = _verify(root, capsys)
    assert rc == 2 and "line 2" in out and "not-a-digest" in out


def test_verify_refuses_a_path_outside_the_folder(small_data, capsys):
    root, _ = small_data
    sums = root / "pki3" / "SHA256SUMS"
    sums.write_text(sums.read_text() + "0" * 64 + "  ../bioimlab/x.bmp\n")
    rc, out = _verify(root, capsys)
    assert rc == 2 and "line 7" in out


def test_verify_refuses_a_missing_list(small_data, capsys):
    root, _ = small_data
    (root / "pki3" / "SHA256SUMS").unlink()
    rc, out = _verify(root, capsys)
    assert rc == 2 and "no checksum file" in out


@needs_data
def test_verify_passes_on_the_public_pki3_folder(capsys, monkeypatch):
    monkeypatch.delenv("CHROMO_DATA", raising=False)
    rc, out = _verify(DATA, capsys)
    assert rc == 0, out[-2000:]
    assert "0 missing, 0 mismatched, 0 extra" in out
