"""`chromo classify` end to end: synthetic cells, real pki3 and bioimlab cell folders, bad input."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from chromo import X, Y, class_name, config, karyotype
from chromo.classify import Classifier, classify_folder
from chromo.data.manifest import build_manifest
from chromo.data.synthetic import write_cell
from chromo.inference import extract_features
from chromo.train import train
from tests.conftest import DATA, needs_data


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny run trained on the synthetic set (seconds), with its validation features."""
    tmp = tmp_path_factory.mktemp("clf")
    cfg = config.load("smoke", runs_dir=str(tmp / "runs"), results_dir=str(tmp / "res"),
                      cache_dir=str(config.project_root() / ".cache"),
                      max_cells={"train": 12, "val": 4, "test": 4}, hidden=32)
    r = train(cfg, "synthetic", "eresnet-u1c0", progress=False)
    extract_features(r, "val", progress=False)
    return r.path


@pytest.fixture(scope="module")
def synthetic_manifest():
    return build_manifest("synthetic")[0]


def _run_cli(*args):
    return subprocess.run([sys.executable, "-m", "chromo", "classify", *map(str, args)], capture_output=True,
                          text=True)


def _labels(names):
    return np.array([{"X": X, "Y": Y}.get(str(n), None) or int(n) for n in names])


def test_synthetic_trisomy_cell(run, synthetic_manifest, tmp_path):
    """The command end to end on the synthetic 47,XY,+21 cell. The fixture model is near chance (two smoke
    epochs on 12 synthetic cells; it calls this cell 47,XX,+16 or similar), so what is checked here is that
    the three outputs agree with each other; the right formula is checked with a model that knows the
    classes in the next test."""
    cell = synthetic_manifest[synthetic_manifest["cell_formula"] == "47,XY,+21"]["cell"].iloc[0]
    assert sorted(synthetic_manifest[synthetic_manifest["cell"] == cell]["label"]).count(21) == 3
    write_cell(synthetic_manifest, cell, tmp_path / "cell")
    r = _run_cli(tmp_path / "cell", "--run", run, "--out", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    a = pd.read_csv(tmp_path / "out/assignments.csv", dtype=str, keep_default_na=False)
    assert len(a) == 47
    assert {"file", "predicted", "confidence", "runner_up", "margin", "to_check", "top1", "top2", "top3",
            "p1", "p2", "p3", "lfv_distance", "changed_by_lrd", "changed_by_assignment"} <= set(a.columns)
    k = json.loads((tmp_path / "out/karyotype.json").read_text())
    pred = _labels(a["predicted"])
    assert k["chromosomes"] == 47 and k["formula"] == karyotype.formula(pred)      # the report is the table's
    assert k["counts"] == {class_name(c): int((pred == c).sum()) for c in range(1, 25)}
    assert (a["changed_by_assignment"] == "True").tolist() == (a["predicted"] != a["top1"]).tolist()
    assert k["formula"].startswith("47,") and "abnormal count: 47 chromosomes" in k["flags"]
    assert (a["p1"].astype(float) >= a["p2"].astype(float)).all()
    assert Image.open(tmp_path / "out/karyogram.png").size[0] > 300


def test_synthetic_trisomy_cell_is_47_XY_plus_21_with_a_model_that_knows_the_classes(run, synthetic_manifest,
                                                                                       tmp_path, monkeypatch):
    """classify's decision path (softmax, assignment, formula, flags, file order) with the network's logits
    replaced by confident ones for the true classes, except one chromosome 1 that the softmax takes for a 2
    (p = 0.59 against 0.36): the argmax then claims three 2s and one 1, the assignment must give it back."""
    import chromo.classify as classify_mod

    cell = synthetic_manifest[synthetic_manifest["cell_formula"] == "47,XY,+21"]["cell"].iloc[0]
    rows = synthetic_manifest[synthetic_manifest["cell"] == cell]
    files = write_cell(synthetic_manifest, cell, tmp_path / "cell")
    truth = {f.name: int(k) for f, k in zip(files, rows["label"])}
    order = sorted(files)                                   # classify works on the files in sorted order
    logits = 5.0 * np.eye(24)[[truth[f.name] - 1 for f in order]]
    odd = next(i for i, f in enumerate(order) if truth[f.name] == 1)
    logits[odd, 0], logits[odd, 1] = 4.0, 5.0
    real = classify_mod.predict

    def confident(model, images, cfg, *args, **kwargs):
        out_logits, feats = real(model, images, cfg, *args, **kwargs)
        assert len(images) == len(order)
        return logits.astype(out_logits.dtype), feats

    monkeypatch.setattr(classify_mod, "predict", confident)
    df, report, _ = Classifier(run).classify(files[::-1])     # listed in another order
    assert report["formula"] == "47,XY,+21" and report["hypothesis"] == "XY"
    assert report["counts"]["21"] == 3 and report["counts"]["1"] == 2 and report["counts"]["2"] == 2
    assert "abnormal karyotype: 47,XY,+21" in report["flags"]
    assert "abnormal count: 47 chromosomes" in report["flags"]
    got = {Path(f).name: p for f, p in zip(df["file"], df["predicted"])}
    # every file, its own label
    assert got == {name: class_name(k) for name, k in truth.items()}
    changed = df[df["changed_by_assignment"]]
    assert [Path(f).name for f in changed["file"]] == [order[odd].name]
    assert changed["top1"].tolist() == ["2"] and changed["predicted"].tolist() == ["1"]


def test_order_of_files_does_not_change_the_result(run, synthetic_manifest, tmp_path):
    cell = synthetic_manifest["cell"].iloc[0]
    files = write_cell(synthetic_manifest, cell, tmp_path / "c")
    clf = Classifier(run)
    a, ra, _ = clf.classify(files)
    b, rb, _ = clf.classify(files[::-1])
    assert ra["formula"] == rb["formula"]
    assert a.set_index("file")["predicted"].equals(b.set_index("file")["predicted"].loc[a["file"]])


def test_a_folder_of_cells(run, synthetic_manifest, tmp_path):
    for cell in synthetic_manifest["cell"].unique()[:3]:
        write_cell(synthetic_manifest, cell, tmp_path / "cells" / cell)
    reports = classify_folder(tmp_path / "cells", run, tmp_path / "out", progress=False)
    assert len(reports) == 3 and sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        synthetic_manifest["cell"].unique()[:3])


@needs_data
def test_real_pki3_cell_folder(run, tmp_path):
    folder = DATA / "pki3/single_clase/97002023.12.tiff"      # a 45-chromosome cell (45,XX,-20)
    r = _run_cli(folder, "--run", run, "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr
    k = json.loads((tmp_path / "o/karyotype.json").read_text())
    assert k["chromosomes"] == 45 and k["true_formula"] == "45,XX,-20" and "accuracy" in k
    assert "abnormal count: 45 chromosomes" in k["flags"]


@needs_data
def test_real_bioimlab_cell_folder(run, tmp_path):
    r = _run_cli(DATA / "bioimlab/single_chromosomes/1", "--run", run, "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr
    assert len(pd.read_csv(tmp_path / "o/assignments.csv")) == 46


@needs_data
@pytest.mark.parametrize("dataset", ["pki3", "bioimlab"])
def test_every_test_cell_through_the_classifier(run, dataset):
    """classify.test_cells finds each test cell's folder; classify_cells gives one row per cell whose true
    formula is the one the labels of the split say (the model here is a tiny synthetic one: shapes only)."""
    from chromo.book.cells import classify_cells, test_cells
    from chromo.data.loader import prepare

    cfg = config.load("smoke")
    cells = test_cells(cfg, dataset)
    man = prepare(cfg, dataset, progress=False).manifest
    test = man[man["split"] == "test"]
    assert [c for c, _ in cells] == [c for c, g in test.groupby("cell", sort=False) if 30 <= len(g) <= 60]
    assert cells and all(f.is_dir() for _, f in cells)
    t = classify_cells(Classifier(run), cells[:2])
    assert list(t["cell"]) == [c for c, _ in cells[:2]] and (t["seconds"] > 0).all()
    for cell, want in zip(t["cell"], t["true_formula"]):
        assert want == karyotype.formula(test.loc[test["cell"] == cell, "label"])


# --- bad input: clear message, non-zero exit, nothing half-written --------------------------------
def _check_fails(r, out, text):
    assert r.returncode == 2 and text in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not out.exists()


def test_empty_folder(run, tmp_path):
    (tmp_path / "empty").mkdir()
    _check_fails(_run_cli(tmp_path / "empty", "--run", run, "--out", tmp_path / "o"), tmp_path / "o",
                 "empty folder")


def test_non_image_file(run, synthetic_manifest, tmp_path):
    cell = synthetic_manifest["cell"].iloc[0]
    write_cell(synthetic_manifest, cell, tmp_path / "c")
    (tmp_path / "c/notes.txt").write_text("hello")
    _check_fails(_run_cli(tmp_path / "c", "--run", run, "--out", tmp_path / "o"), tmp_path / "o",
                 "notes.txt: not an image")
    r = _run_cli(tmp_path / "c", "--run", run, "--out", tmp_path / "o", "--skip-non-images")
    assert r.returncode == 0
    report = json.loads((tmp_path / "o/karyotype.json").read_text())
    assert report["skipped_non_images"][0].endswith("notes.txt")


def test_unreadable_image(run, synthetic_manifest, tmp_path):
    files = write_cell(synthetic_manifest, synthetic_manifest["cell"].iloc[0], tmp_path / "c")
    files[5].write_bytes(b"\x89PNG broken")
    _check_fails(_run_cli(tmp_path / "c", "--run", run, "--out", tmp_path / "o"), tmp_path / "o",
                 f"{files[5].name}: unreadable image")


@pytest.mark.parametrize("n", [20, 70])
def test_too_few_or_too_many_objects(run, synthetic_manifest, tmp_path, n):
    files = write_cell(synthetic_manifest, synthetic_manifest["cell"].iloc[0], tmp_path / "c")
    if n < len(files):
        for f in files[n:]:
            f.unlink()
    else:
        for i in range(n - len(files)):
            shutil.copy(files[i], tmp_path / "c" / f"extra_{i}.png")
    _check_fails(_run_cli(tmp_path / "c", "--run", run, "--out", tmp_path / "o"), tmp_path / "o",
                 f"{n} images; a cell needs 30..60")


def test_missing_or_incompatible_run(run, synthetic_manifest, tmp_path):
    write_cell(synthetic_manifest, synthetic_manifest["cell"].iloc[0], tmp_path / "c")
    _check_fails(_run_cli(tmp_path / "c", "--run", tmp_path / "norun", "--out", tmp_path / "o"),
                 tmp_path / "o",
                 "run directory not found")
    bad = tmp_path / "badrun"
    shutil.copytree(run, bad)
    (bad / "best.pt").write_bytes(b"junk")
    _check_fails(_run_cli(tmp_path / "c", "--run", bad, "--out", tmp_path / "o"), tmp_path / "o",
                 "corrupt or incompatible")
    (bad / "best.pt").unlink()
    shutil.copy(run / "best.pt", bad / "best.pt")
    (bad / "features_val_ki.npz").unlink()
    _check_fails(_run_cli(tmp_path / "c", "--run", bad, "--out", tmp_path / "o"), tmp_path / "o",
                 "incomplete run")


def test_existing_output_is_not_overwritten(run, synthetic_manifest, tmp_path):
    write_cell(synthetic_manifest, synthetic_manifest["cell"].iloc[0], tmp_path / "c")
    (tmp_path / "o").mkdir()
    (tmp_path / "o/keep.txt").write_text("mine")
    r = _run_cli(tmp_path / "c", "--run", run, "--out", tmp_path / "o")
    assert r.returncode == 2 and "not empty" in r.stderr and (tmp_path / "o/keep.txt").exists()
