"""`chromo classify` on bad input and unsafe output folders: exit 2 with a one-line message naming the thing
and what to do, nothing written or removed; usable input converted or flagged, with a note."""
import errno
import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image

from chromo import cli, publish
from chromo.classify import OUTPUT_FILES
from chromo.data.manifest import read_gray
from chromo.data.synthetic import write_cell
from tests.test_classify import run, synthetic_manifest  # noqa: F401  (module fixtures: one tiny training)


# --- helpers -------------------------------------------------------------------------------------------
def snapshot(*roots) -> dict:
    """Every file and folder under `roots`: path -> sha256 of its bytes (None for a folder)."""
    out = {}
    for r in map(Path, roots):
        for p in [r, *r.rglob("*")]:
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None
    return out


def chromo_classify(capsys, folder, run, out, *more):  # noqa: F811 (the fixture, passed on)
    code = cli.main(["classify", str(folder), "--run", str(run), "--out", str(out), *more])
    return code, capsys.readouterr().err


def refused(capsys, args, words, watch):
    """Run classify, expect exit 2, one 'chromo: error:' line holding `words`, and `watch` unchanged."""
    before = snapshot(*watch)
    code, err = chromo_classify(capsys, *args)
    assert code == 2 and err.startswith("chromo: error: ") and err.count("\n") == 1, err
    for w in words:
        assert str(w) in err, err
    assert snapshot(*watch) == before
    return err


def cells(manifest, folder: Path, n: int) -> list[Path]:
    """n synthetic cells as sub-folders of `folder`."""
    names = manifest["cell"].unique()[:n]
    for c in names:
        write_cell(manifest, c, folder / c)
    return [folder / c for c in names]


@pytest.fixture
def cell(synthetic_manifest, tmp_path):  # noqa: F811
    return cells(synthetic_manifest, tmp_path / "in", 1)[0]


# --- --force removes only this command's files; OUT must not touch the input or the run ------------
def test_force_keeps_foreign_files(run, cell, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    (out / "assignments.csv").write_text("old")
    refused(capsys, (cell, run, out, "--force"), ["keep.txt", "not written by this command",
                                                   "will not remove"], [tmp_path, run])
    refused(capsys, (cell, run, out), [out, "not empty", "choose another --out"], [tmp_path, run])


@pytest.mark.parametrize("where, words", [
    ("in", ["is the input folder"]), ("in/o", ["lies inside the input folder"]),
    (".", ["contains the input folder"]),
    ("run", ["is the run directory"]), ("run/o", ["lies inside the run directory"]),
    ("run/..", ["contains the run directory"])])
def test_out_overlapping_input_or_run(run, cell, tmp_path, capsys, where, words):  # noqa: F811
    out = run / where[4:] if where.startswith("run") else tmp_path / where
    refused(capsys, (cell.parent, run, out, "--force"), words + ["choose an --out outside it"],
            [tmp_path, run])


def test_out_is_a_file(run, cell, tmp_path, capsys):  # noqa: F811
    (tmp_path / "o").write_text("a file")
    refused(capsys, (cell, run, tmp_path / "o", "--force"), ["o: is a file", "choose another --out"],
            [tmp_path, run])


@pytest.mark.parametrize("problem", ["disk full", "read-only"])
def test_write_errors_name_out_and_leave_nothing(run, synthetic_manifest, tmp_path, capsys,  # noqa: F811
                                                 monkeypatch, problem):
    cells(synthetic_manifest, tmp_path / "in", 2)
    out = tmp_path / "new" / "deeper" / "o"    # parent folders made for OUT are removed again
    if problem == "disk full":                 # the second cell's karyogram fails: midway
        real, calls = Figure.savefig, []

        def savefig(fig, *a, **k):
            calls.append(1)
            if len(calls) == 2:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(fig, *a, **k)
        monkeypatch.setattr(Figure, "savefig", savefig)
        words = [out, "No space left on device", "Nothing was written"]
    else:                                      # chmod cannot stop root, so the folder's mkdir is made to fail
        def read_only(*a):
            raise PermissionError(errno.EACCES, "Permission denied")
        monkeypatch.setattr(publish, "_new_dir", read_only)
        words = [out, "Permission denied", "writable"]
    refused(capsys, (tmp_path / "in", run, out), words, [tmp_path, run])


def test_force_replaces_a_previous_result(run, synthetic_manifest, tmp_path, capsys):  # noqa: F811
    cs = cells(synthetic_manifest, tmp_path / "in", 2)
    out = tmp_path / "o"
    assert chromo_classify(capsys, tmp_path / "in", run, out)[0] == 0            # OUT/<cell>/...
    assert chromo_classify(capsys, cs[0], run, out)[0] == 2                      # not without --force
    assert chromo_classify(capsys, cs[0], run, out, "--force")[0] == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "o"]            # no temporary folder left


# --- two runs racing for one OUT: one fails, no result lost -----------------------------------------
def test_two_runs_racing_for_one_out(run, cell, tmp_path, capsys, monkeypatch):  # noqa: F811
    out, real, rival = tmp_path / "o", publish._publish, {}

    def rival_first(tmp, o, force, own):   # between this run's check and its rename, a rival run writes OUT
        monkeypatch.setattr(publish, "_publish", real)
        rival["code"] = cli.main(["classify", str(cell), "--run", str(run), "--out", str(out)])
        rival["files"] = snapshot(out)
        real(tmp, o, force, own)
    monkeypatch.setattr(publish, "_publish", rival_first)
    code, err = chromo_classify(capsys, cell, run, out)
    assert rival["code"] == 0 and code == 2 and "another run wrote it meanwhile" in err, err
    assert snapshot(out) == rival["files"] and len(rival["files"]) == 1 + len(OUTPUT_FILES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "o"]


# --- a folder of cells with one bad cell writes nothing -----------------------------------------------
@pytest.mark.parametrize("bad", ["unreadable", "blank"])
def test_one_bad_cell_writes_nothing(run, synthetic_manifest, tmp_path, capsys, bad):  # noqa: F811
    cs = cells(synthetic_manifest, tmp_path / "in", 2)
    # in the last cell: earlier cells were written before
    f = sorted(cs[-1].iterdir())[3]
    if bad == "unreadable":
        f.write_bytes(b"\x89PNG broken")
    else:
        Image.fromarray(np.zeros((40, 12), np.uint8)).save(f)
    refused(capsys, (tmp_path / "in", run, tmp_path / "o"), [f, bad], [tmp_path, run])


# --- 16-bit and float images are rescaled, not clipped; NaN is refused ---------------------------------
def test_wide_images_are_rescaled_and_noted(run, cell, tmp_path, capsys):  # noqa: F811
    wide = tmp_path / "wide"
    wide.mkdir()
    for f in sorted(cell.iterdir()):   # 8-bit spanning 0..255, and the same as 12-bit values in 16-bit TIFFs
        a = np.asarray(Image.open(f)).astype(np.float64)
        a = np.round(a * 255 / a.max()).astype(np.uint16)
        Image.fromarray(a.astype(np.uint8)).save(f)
        Image.fromarray(a * 16).save(wide / f"{f.stem}.tif")
    assert chromo_classify(capsys, cell, run, tmp_path / "o8")[0] == 0
    assert chromo_classify(capsys, wide, run, tmp_path / "o16")[0] == 0
    k = json.loads((tmp_path / "o16/karyotype.json").read_text())
    assert len(k["converted"]) == len(list(cell.iterdir()))
    assert k["converted"][0]["from"] == "uint16 (min 0, max 4080)"
    assert any("rescaled" in f for f in k["flags"])
    a8, a16 = pd.read_csv(tmp_path / "o8/assignments.csv"), pd.read_csv(tmp_path / "o16/assignments.csv")
    assert a16["converted_from"].str.startswith("uint16").all()
    # the same pixels: the same result
    pd.testing.assert_frame_equal(a8.drop(columns=["file", "converted_from"]),
                                  a16.drop(columns=["file", "converted_from"]))


def test_read_gray_rescales_wide_and_keeps_8_bit(tmp_path):
    a = np.arange(256, dtype=np.uint8).reshape(16, 16)
    for name, arr in [("full.tif", a.astype(np.uint16) * 257), ("12bit.png", a.astype(np.uint16) * 16),
                      ("float.tif", a.astype(np.float32) / 255), ("int32.tif", a.astype(np.int32) * 1000)]:
        Image.fromarray(arr).save(tmp_path / name)
        notes = []
        assert np.array_equal(read_gray(tmp_path / name, notes), a) and len(notes) == 1, name
    for name in ["8bit.png", "8bit.tif", "8bit.bmp"]:   # 8-bit: exactly PIL's convert("L"), no note
        Image.fromarray(a).save(tmp_path / name)
        notes = []
        assert np.array_equal(read_gray(tmp_path / name, notes), a) and notes == []


def test_nan_in_a_float_image(run, cell, tmp_path, capsys):  # noqa: F811
    f = sorted(cell.iterdir())[7]
    x = np.asarray(Image.open(f)).astype(np.float32)
    x[3, 3] = np.nan
    f.unlink()
    Image.fromarray(x).save(f.with_suffix(".tif"))
    refused(capsys, (cell, run, tmp_path / "o"), [f.with_suffix(".tif"), "NaN"], [tmp_path, run])


# --- blank, tiny and duplicated images are refused; huge ones are flagged --------------------------------
@pytest.mark.parametrize("bad", ["all zero", "all white", "tiny", "duplicate"])
def test_blank_tiny_or_duplicated_images(run, cell, tmp_path, capsys, bad):  # noqa: F811
    f = sorted(cell.iterdir())[5]
    if bad == "duplicate":   # the same pixels in another format
        g = cell / "copy.bmp"
        Image.open(f).save(g)
        words = [f, g, "identical images"]
    else:
        Image.fromarray(np.full((2, 2) if bad == "tiny" else (40, 12), 255 if bad == "all white" else 0,
                                np.uint8)).save(f)
        words = [f, "too small" if bad == "tiny" else "blank image"]
    refused(capsys, (cell, run, tmp_path / "o"), words, [tmp_path, run])


def test_huge_image_is_flagged(run, cell, tmp_path, capsys):  # noqa: F811
    f = sorted(cell.iterdir())[0]
    im = Image.open(f)
    im.resize((im.width * 5, im.height * 5)).save(f)
    assert chromo_classify(capsys, cell, run, tmp_path / "o")[0] == 0
    k = json.loads((tmp_path / "o/karyotype.json").read_text())
    assert k["shrunk_files"] == [str(f)] and any("1 image(s) larger than" in x and "shrunk" in x for x
                                                 in k["flags"])


# --- a checkpoint copied from another run ---------------------------------------------------------------
def test_checkpoint_from_another_run(run, cell, tmp_path, capsys):  # noqa: F811
    other = tmp_path / "run"
    shutil.copytree(run, other)
    ck = torch.load(other / "best.pt", weights_only=True)
    ck["config_digest"] = "0123456789ab"
    torch.save(ck, other / "best.pt")
    refused(capsys, (cell, other, tmp_path / "o"), [other / "best.pt", "belongs to another run",
                                                    "0123456789ab"],
            [tmp_path, run])


# --- output folders are readable by others (umask applies) ---------------------------------------------
def test_output_folder_mode(run, synthetic_manifest, tmp_path, capsys):  # noqa: F811
    cells(synthetic_manifest, tmp_path / "in", 2)
    old = os.umask(0o022)
    try:
        assert chromo_classify(capsys, tmp_path / "in", run, tmp_path / "o")[0] == 0
    finally:
        os.umask(old)
    for d in [tmp_path / "o", *(tmp_path / "o").iterdir()]:
        assert d.stat().st_mode & 0o777 == 0o755, d
