"""Data layer: counts of the public sets, quirks and bad input, splits, preprocessing, synthetic set."""
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from chromo import config
from chromo.data import canvas, splits
from chromo.data.augment import simulate_mi_set
from chromo.data.manifest import DataError, build_manifest, cell_table
from chromo.data.synthetic import synthetic_rows
from tests.conftest import DATA, needs_data


# --- the public data, as its README states ------------------------------------------------------
@needs_data
def test_pki3_counts_match_the_data_readme():
    m, rep = build_manifest("pki3", DATA)
    cells = cell_table(m)
    assert len(cells) == 563 and m["slide"].nunique() == 341
    assert len(m) + len(rep.excluded) == 25882
    assert [e["path"] for e
            in rep.excluded] == ["pki3/single_clase/97002569.11.tiff/clase25/clase25_0_97002569.11.tiff"]
    raw = cells["count"] + (cells["cell"] == "97002569.11")   # the excluded image belonged to a 46-cell
    assert raw.value_counts().to_dict() == {46: 518, 45: 25, 47: 19, 36: 1}
    assert cells.set_index("cell").loc["97002319.8", "incomplete"]
    assert rep.converted == 20                                  # RGBA files read as grayscale
    f = set(cells["formula"])
    assert {"47,XY,+21", "47,XY,+18", "47,XY,+13", "47,XXY", "47,XYY", "47,XXX", "45,X"} <= f


@needs_data
def test_bioimlab_counts_match_the_data_readme():
    m, rep = build_manifest("bioimlab", DATA)
    cells = cell_table(m)
    assert len(cells) == 119 and len(m) == 5474 and not rep.excluded
    assert (cells["count"] == 46).all()
    assert cells["formula"].value_counts().to_dict() == {"46,XX": 74, "46,XY": 45}
    assert rep.converted == 14


# --- bad input ----------------------------------------------------------------------------------
def test_missing_data_directory_names_the_path(monkeypatch, tmp_path):
    monkeypatch.setenv("CHROMO_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(config.ConfigError, match="nowhere.*CHROMO_DATA"):
        config.Config().data_root()


def test_missing_dataset_folder(tmp_path):
    with pytest.raises(DataError, match="pki3 folder not found"):
        build_manifest("pki3", tmp_path)


def test_tiny_layout_reads(tiny_pki3):
    m, rep = build_manifest("pki3", tiny_pki3)
    assert len(m) == 2 * 46 and m["cell"].nunique() == 2 and not rep.excluded
    assert set(m["cell_formula"]) == {"46,XY"}


def test_corrupt_file_is_an_error_naming_it_or_a_listed_skip(tiny_pki3):
    bad = tiny_pki3 / "pki3/single_clase/12345678.1.tiff/clase5/clase5_0_12345678.1.tiff"
    bad.write_bytes(b"not a tiff at all")
    with pytest.raises(DataError, match="clase5_0_12345678.1.tiff: unreadable image"):
        build_manifest("pki3", tiny_pki3)
    m, rep = build_manifest("pki3", tiny_pki3, on_error="skip")
    assert len(m) == 91 and [s["path"] for s in rep.skipped] == [str(bad)]


def test_header_cache_rebuilds_the_same_manifest_without_opening_images(tiny_pki3, tmp_path, monkeypatch):
    from chromo.data import manifest as mf

    cache = tmp_path / "cache" / "headers.json"
    first, _ = build_manifest("pki3", tiny_pki3, header_cache=cache)
    assert len(json.loads(cache.read_text())["headers"]) == 92
    opened = []
    real = mf.Image.open
    monkeypatch.setattr(mf.Image, "open", lambda *a, **k: opened.append(a[0]) or real(*a, **k))
    again, _ = build_manifest("pki3", tiny_pki3, header_cache=cache)
    pd.testing.assert_frame_equal(first, again)
    assert opened == []
    # a file rewritten with another size is read again; the others still come from the cache
    p = tiny_pki3 / "pki3/single_clase/12345678.1.tiff/clase1/clase1_0_12345678.1.tiff"
    Image.fromarray(np.full((30, 9), 200, np.uint8)).save(p)
    third, _ = build_manifest("pki3", tiny_pki3, header_cache=cache)
    assert opened == [p]
    assert third.loc[third["path"].str.endswith(p.name), ["width", "height"]].values.tolist() == [[9, 30]]


def test_header_cache_never_hides_a_bad_file_and_survives_damage(tiny_pki3, tmp_path):
    cache = tmp_path / "headers.json"
    build_manifest("pki3", tiny_pki3, header_cache=cache)
    bad = tiny_pki3 / "pki3/single_clase/12345678.1.tiff/clase5/clase5_0_12345678.1.tiff"
    bad.write_bytes(b"not a tiff at all")
    for _ in range(2):   # unreadable files are never remembered: the error comes every time
        with pytest.raises(DataError, match="clase5_0_12345678.1.tiff: unreadable image"):
            build_manifest("pki3", tiny_pki3, header_cache=cache)
    m, rep = build_manifest("pki3", tiny_pki3, on_error="skip", header_cache=cache)
    assert len(m) == 91 and len(rep.skipped) == 1
    assert len(json.loads(cache.read_text())["headers"]) == 91    # the bad file's old entry is dropped
    cache.write_text("{not json")                                # a damaged cache is ignored and rewritten
    m2, _ = build_manifest("pki3", tiny_pki3, on_error="skip", header_cache=cache)
    pd.testing.assert_frame_equal(m, m2)
    assert len(json.loads(cache.read_text())["headers"]) == 91


def test_unknown_class_folder_is_excluded_and_listed(tiny_pki3):
    d = tiny_pki3 / "pki3/single_clase/12345678.1.tiff/clase25"
    d.mkdir()
    Image.fromarray(np.full((20, 8), 200, np.uint8)).save(d / "clase25_0_12345678.1.tiff")
    e = tiny_pki3 / "pki3/single_clase/12345678.1.tiff/misc"
    e.mkdir()
    (e / "notes.txt").write_text("x")
    m, rep = build_manifest("pki3", tiny_pki3)
    reasons = {r["path"].split("/")[-1]: r["reason"] for r in rep.excluded}
    assert "outside 1..24" in reasons["clase25_0_12345678.1.tiff"]
    assert "unrecognised class folder" in reasons["notes.txt"]
    assert len(m) == 92   # nothing else lost


def test_empty_cell_is_listed(tiny_pki3):
    (tiny_pki3 / "pki3/single_clase/12345678.3.tiff").mkdir()
    _, rep = build_manifest("pki3", tiny_pki3)
    assert rep.excluded == [{"path": "pki3/single_clase/12345678.3.tiff",
                             "reason": "empty cell (no chromosome images)"}]


def test_rgb_file_is_converted_and_counted(tiny_pki3):
    p = tiny_pki3 / "pki3/single_clase/12345678.1.tiff/clase1/clase1_0_12345678.1.tiff"
    Image.open(p).convert("RGBA").save(p)
    m, rep = build_manifest("pki3", tiny_pki3)
    assert rep.converted == 1
    from chromo.data.manifest import load_image

    a = load_image(m[m["path"].str.endswith("clase1_0_12345678.1.tiff")].iloc[0], tiny_pki3)
    assert a.ndim == 2 and a.dtype == np.uint8 and a.max() == 255 and a.min() == 60


def test_bioimlab_name_forms(tmp_path):
    d = tmp_path / "bioimlab/single_chromosomes/7"
    d.mkdir(parents=True)
    img = Image.fromarray(np.full((20, 10), 30, np.uint8))
    for name in ("7 1a.bmp", "7 1b.bmp", "7 23.bmp", "7 24.bmp", "7 xx.bmp"):
        img.save(d / name)
    m, rep = build_manifest("bioimlab", tmp_path)
    assert sorted(m["label"]) == [1, 1, 23, 24]
    assert [r["reason"][:20] for r in rep.excluded] == ["file name is not '<c"]


# --- splits -------------------------------------------------------------------------------------
@needs_data
def test_pki3_split_is_disjoint_by_slide_and_has_abnormal_test_cells():
    m, _ = build_manifest("pki3", DATA)
    s = splits.make_splits(m, seed=0)
    by = {k: set(g["slide"]) for k, g in s.groupby("split")}
    assert not (by["train"] & by["test"]) and not (by["train"] & by["val"]) and not (by["val"] & by["test"])
    frac = s.groupby("split")["slide"].nunique() / s["slide"].nunique()
    assert 0.75 < frac["train"] < 0.85 and 0.05 < frac["test"] < 0.15
    assert s[(s["split"] == "test")]["abnormal"].sum() >= 3
    pd.testing.assert_frame_equal(s, splits.make_splits(m, seed=0))          # deterministic
    assert not s["split"].equals(splits.make_splits(m, seed=1)["split"])


@needs_data
def test_bioimlab_split_follows_the_published_protocol():
    m, _ = build_manifest("bioimlab", DATA)
    s = splits.make_splits(m, seed=0)
    n = s["split"].value_counts()
    assert n["test"] == 49 and n["train"] + n["val"] == 70


def test_folds_deal_the_train_and_val_slides_into_k_folds_and_leave_test_alone(tmp_path):
    """data.splits.fold (config val_fold): every train+val slide is in exactly one fold's validation split,
    whole slides only, the same folds whatever the run's seed; load_or_make applies it without touching the
    profile's split file."""
    m, _ = build_manifest("synthetic")
    full = splits.make_splits(m, seed=0)
    inner = full[full["split"] != "test"]
    seen = []
    for k in range(3):
        f = splits.fold(full, k, 3)
        assert f["split"][full["split"] == "test"].eq("test").all()           # test untouched
        assert set(f["split"][full["split"] != "test"]) == {"train", "val"}
        by = {name: set(g["slide"]) for name, g in f.groupby("split")}
        assert not by["train"] & by["val"]                                      # whole slides
        seen += sorted(by["val"])
    assert sorted(seen) == sorted(inner["slide"].unique())                     # each slide validates once
    sizes = [splits.fold(full, k, 3).query("split == 'val'")["slide"].nunique() for k in range(3)]
    assert max(sizes) - min(sizes) <= 1                                          # slides dealt evenly
    with pytest.raises(ValueError, match="cannot fill 99 folds"):
        splits.fold(full, 0, 99)
    cfg = config.load("smoke", results_dir=str(tmp_path), max_cells=None)
    plain = splits.load_or_make(cfg, "synthetic", m)
    cfg.data.val_fold = [2, 3]
    folded = splits.load_or_make(cfg, "synthetic", m)
    pd.testing.assert_frame_equal(folded, splits.fold(plain, 2, 3))
    other_seed = config.load("smoke", results_dir=str(tmp_path), max_cells=None, seed=1)
    other_seed.data.val_fold = [2, 3]                                            # the same folds for any seed
    pd.testing.assert_frame_equal(splits.load_or_make(other_seed, "synthetic", m), folded)
    saved = pd.read_csv(cfg.results() / "splits" / "synthetic.csv", dtype={"cell": str, "slide": str})
    # the file keeps the profile's split
    pd.testing.assert_frame_equal(saved, plain)


def test_subset_keeps_abnormal_cells_in_test():
    """subset() keeps the first n cells of each split, the test split's abnormal cells first. (It cannot
    move cells between splits: abnormal cells that make_splits put in train or val stay there.)"""
    m, _ = build_manifest("synthetic")
    full = splits.make_splits(m, seed=0)
    # the synthetic set's abnormal cells are cells 3, 7, 11, 15 (chromo.data.synthetic.ABNORMAL), 2 per slide
    assert sorted(full[full["abnormal"]]["cell"]) == ["S001.2", "S003.2", "S005.2", "S007.2"]
    assert full.set_index("cell").loc["S001.2", "formula"] == "47,XY,+21"
    test = full[full["split"] == "test"]
    abnormal_test = list(test[test["abnormal"]]["cell"])
    assert abnormal_test                                   # make_splits sends abnormal slides to test too
    # not already first: a plain head() loses them
    assert not test["abnormal"].iloc[:len(abnormal_test)].all()
    for n in (len(abnormal_test), len(abnormal_test) + 1, 4):
        s = splits.subset(full, {"train": 5, "val": 2, "test": n})
        assert s["split"].value_counts().to_dict() == {"train": 5, "val": 2, "test": n}
        got = s[s["split"] == "test"]
        assert set(abnormal_test) <= set(got["cell"]), n         # every abnormal test cell is kept ...
        assert list(got["cell"])[:len(abnormal_test)] == abnormal_test   # ... ahead of the normal ones
        assert set(got["cell"]) <= set(test["cell"])             # nothing moved in from another split
        for name in ("train", "val"):                            # the other splits: their first cells
            assert list(s[s["split"] == name]["cell"]) == list(full[full["split"] == name]["cell"])[:len(
                s[s["split"] == name])]
    s = splits.subset(full, {"train": 5, "val": 2, "test": 1})
    assert list(s[s["split"] == "test"]["cell"]) == abnormal_test[:1]
    assert splits.subset(full, None) is full
    assert len(splits.subset(full, {"train": 3})) == 3 + (full["split"] != "train").sum()   # others whole


# --- preprocessing ------------------------------------------------------------------------------
def test_polarity_is_normalised():
    dark_on_light = np.full((10, 10), 250, np.uint8)
    dark_on_light[3:7, 4:6] = 50
    out = canvas.normalise_polarity(dark_on_light, dark_on_light=True)
    assert out[0, 0] == 0 and out[4, 4] == 200


def test_relative_size_survives_global_scale_but_not_per_image(tmp_path):
    m, _ = build_manifest("synthetic")
    g, _ = canvas.build_cache(m, None, tmp_path, 64, "global", progress=False)
    p, _ = canvas.build_cache(m, None, tmp_path, 64, "per_image", progress=False)
    lab = m["label"].to_numpy()
    area = lambda a, k: (np.asarray(a)[lab == k] > 20).sum(axis=(1, 2)).mean()  # noqa: E731
    assert area(g, 1) / area(g, 21) > 3.0       # chromosome 1 is about five times 21
    assert area(p, 1) / area(p, 21) < 1.6       # per-image resizing erases the cue


@needs_data
def test_relative_size_on_real_pki3(tmp_path):
    from chromo.data.loader import prepare

    cfg = config.load("smoke", results_dir=str(tmp_path), cache_dir=str(config.project_root() / ".cache"))
    p = prepare(cfg, "pki3", progress=False)
    lab = p.manifest["label"].to_numpy()
    area = (np.asarray(p.images) > 20).sum(axis=(1, 2))
    assert area[lab == 1].mean() / area[lab == 21].mean() > 3.0


def test_cache_is_reused_and_rebuilt_when_parameters_change(tmp_path):
    m, _ = build_manifest("synthetic")
    a, meta = canvas.build_cache(m, None, tmp_path, 48, progress=False)
    b, meta2 = canvas.build_cache(m, None, tmp_path, 48, progress=False)
    assert meta["key"] == meta2["key"] and len(list((tmp_path / "synthetic").glob("*.npy"))) == 1
    c, meta3 = canvas.build_cache(m, None, tmp_path, 56, progress=False)
    assert meta3["key"] != meta["key"] and c.shape[1:] == (56, 56)
    d, meta4 = canvas.build_cache(m.iloc[:100], None, tmp_path, 48, progress=False)
    assert meta4["key"] != meta["key"] and len(d) == 100


# --- synthetic set and simulated MI -------------------------------------------------------------
def test_synthetic_is_deterministic_and_labelled():
    a, b = synthetic_rows(seed=0), synthetic_rows(seed=0)
    assert a == b
    assert synthetic_rows(seed=1) != a
    m, _ = build_manifest("synthetic")
    c = cell_table(m)
    assert len(c) == 60 and {"47,XY,+21", "45,X", "47,XXY"} <= set(c["formula"])


def test_simulated_mi_is_deterministic_and_changes_the_image():
    m, _ = build_manifest("synthetic")
    imgs, _ = canvas.build_cache(m.iloc[:8], None, config.project_root() / ".cache", 64, progress=False)
    x, y = simulate_mi_set(np.asarray(imgs), seed=3), simulate_mi_set(np.asarray(imgs), seed=3)
    assert (x == y).all() and not (x == np.asarray(imgs)).all()
    assert not (simulate_mi_set(np.asarray(imgs), seed=4) == x).all()


# --- the command ----------------------------------------------------------------------------------
def _chromo(*args, env=None):
    return subprocess.run([sys.executable, "-m", "chromo", *args], capture_output=True, text=True, env=env)


def test_data_summary_json_synthetic():
    r = _chromo("data", "summary", "--dataset", "synthetic", "--json", "--config", "smoke")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["cells"] == 60 and out["abnormal_cells"] == 4 and out["excluded"] == []


@needs_data
def test_data_summary_json_pki3():
    out = json.loads(_chromo("data", "summary", "--dataset", "pki3", "--json", "--config", "smoke").stdout)
    assert (out["cells"], out["images"], out["slides"]) == (563, 25881, 341)
    assert len(out["excluded"]) == 1 and "clase25" in out["excluded"][0]["path"]


def test_data_verify_detects_a_mismatch(tiny_pki3):
    import hashlib
    import os

    root = tiny_pki3 / "pki3"
    files = sorted(p for p in root.rglob("*.tiff") if p.is_file())
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  ./{p.relative_to(root)}" for p in files]
    (root / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    env = {**os.environ, "CHROMO_DATA": str(tiny_pki3)}
    assert _chromo("data", "verify", "--dataset", "pki3", "--quiet", "--config", "smoke",
                   env=env).returncode == 0
    files[3].write_bytes(files[3].read_bytes() + b"x")
    r = _chromo("data", "verify", "--dataset", "pki3", "--quiet", "--config", "smoke", env=env)
    assert r.returncode == 1 and "MISMATCH" in r.stderr and files[3].name in r.stderr


def test_missing_data_is_one_clear_error(tmp_path):
    import os

    r = _chromo("data", "summary", "--dataset", "pki3", "--config", "smoke",
                env={**os.environ, "CHROMO_DATA": str(tmp_path / "absent")})
    assert r.returncode == 2 and "data directory not found" in r.stderr and "Traceback" not in r.stderr


def test_object_lengths_are_measured_on_the_chromosome_in_source_pixels():
    from chromo.data.canvas import object_lengths

    a = np.zeros((4, 10, 10), np.uint8)
    a[0, 2:8, 4:6] = 100          # upright 6 x 2 object
    a[1, 5, 1:10] = 50            # lying 1 x 9 object: its longer side counts
    a[3, 0:3, 0:3] = 12           # at the threshold only: background (pale margin), no object
    assert object_lengths(a, 0.5).tolist() == [12.0, 18.0, 0.0, 0.0]       # canvas px / global scale
    assert object_lengths(a, None).tolist() == [6.0, 9.0, 0.0, 0.0]        # per-image scaling: canvas px
