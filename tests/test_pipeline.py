"""The main job's plan, its table of contents, its rule for re-executing notebooks, and metrics.json."""
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from chromo import config
from chromo.book import pipeline, report


def test_plan_covers_every_notebook_and_run():
    cfg = config.load("cpu")
    steps = pipeline.plan(cfg)
    nbs = {s["nb"] for s in steps}
    assert nbs == {p.stem for p in (config.project_root() / "notebooks").glob("*.ipynb")}
    trains = [s for s in steps if s["nb"] == "02_train"]
    assert len(trains) == sum(len(m) for m in cfg.training.models.values())
    assert all(s["params"]["config"] == "configs/cpu.yaml" for s in steps)


def test_stamp_changes_with_parameters_and_sources():
    cfg = config.load("smoke")
    step = pipeline.plan(cfg)[0]
    a = pipeline.stamp(step, cfg, "data", "src")
    assert a == pipeline.stamp(step, cfg, "data", "src")
    assert a != pipeline.stamp({**step, "params": {**step["params"], "seed": 1}}, cfg, "data", "src")
    assert a != pipeline.stamp(step, cfg, "data", "src2")
    assert a != pipeline.stamp(step, cfg, "data2", "src")


def test_toc_is_the_book_in_chapter_order_with_every_notebook(tmp_path):
    """_toc.yml against an expectation written out here: the root page first, the parts in the book's order,
    each notebook of notebooks/ once (01 once per dataset, 02 once per run), every named page present."""
    cfg = config.load("smoke")
    pipeline.write_toc(cfg, tmp_path)
    toc = yaml.safe_load((tmp_path / "_toc.yml").read_text())
    assert toc["format"] == "jb-book" and toc["root"] == "intro"
    parts = [(p["caption"], [c["file"] for c in p["chapters"]]) for p in toc["parts"]]
    trains = [f"notebooks/02_train_{d}_{m}" for d, models in cfg.training.models.items() for m in models]
    assert trains == ["notebooks/02_train_pki3_eresnet-u1c0", "notebooks/02_train_bioimlab_eresnet-u1c0"]
    assert parts == [
        ("Background", ["data", "method"]),
        ("Data", ["notebooks/01_data_pki3", "notebooks/01_data_bioimlab"]),
        ("Training", trains + ["notebooks/11_recognition"]),
        ("The paper's analyses", ["notebooks/03_label_feature_vectors",
                                  "notebooks/04_hausdorff_cosine_vs_euclid",
                                  "notebooks/05_label_redistribution", "notebooks/06_failure_gallery",
                                  "notebooks/07_model_comparison", "notebooks/13_extended_block"]),
        ("Beyond the paper", ["notebooks/08_karyotype", "notebooks/09_classify_a_cell",
                              "notebooks/14_review"]),
        ("Paper and run record", ["notebooks/12_claims", "notebooks/10_paper_vs_ours"]),
        ("About", ["notebooks/15_reproducibility", "references"]),
    ]
    files = [f for _, fs in parts for f in fs]
    assert len(files) == len(set(files))
    chapters = [f for f in files if f.startswith("notebooks/")]
    run = [f"notebooks/{s['out']}" for s in pipeline.plan(cfg)]
    # every chapter that runs, once
    assert sorted(chapters) == sorted(run)
    # the book reads in run order, except chapter 11: it runs after 07 and 08, whose records its targets read
    assert [c for c in chapters if "11_" not in c] == [c for c in run if "11_" not in c]
    assert run.index("notebooks/11_recognition") > max(run.index("notebooks/07_model_comparison"),
                                                       run.index("notebooks/08_karyotype"))
    # one chapter per dataset / run
    per_notebook = {"01": 2, "02": len(trains)}
    for nb in sorted((config.project_root() / "notebooks").glob("*.ipynb")):
        n = sum(f.split("/")[1][:2] == nb.stem[:2] for f in chapters)
        assert n == per_notebook.get(nb.stem[:2], 1), f"{nb.name}: {n} chapters in the toc"
    for page in [toc["root"]] + [f for f in files if not f.startswith("notebooks/")]:
        assert page + ".md" in pipeline.STATIC and (config.project_root() / "book"
                                                    / f"{page}.md").exists(), page


# --- the main job's rule: a step is skipped when its stamp is unchanged and its output exists
# ----------------
@pytest.fixture
def job(tmp_path, monkeypatch):
    """run_pipeline on a throwaway project: notebooks, the profile config, the static pages and the package
    sources as small stand-in files under tmp_path; papermill replaced by a stand-in that writes the output
    notebook (and, for a training step, the run's done.json) and records which steps ran."""
    root = tmp_path / "project"
    cfg = config.load("smoke", runs_dir=str(tmp_path / "runs"), results_dir=str(tmp_path / "results"))
    steps = pipeline.plan(cfg)
    for sub in ("notebooks", "configs", "book", "chromo"):
        (root / sub).mkdir(parents=True)
    for nb in {s["nb"] for s in steps}:
        (root / "notebooks" / f"{nb}.ipynb").write_text(json.dumps({"notebook": nb}))
    (root / "configs" / "smoke.yaml").write_text("profile: smoke\n")
    for name in pipeline.STATIC:
        (root / "book" / name).write_text(name)
    (root / "chromo" / "module.py").write_text("x = 1\n")
    state = SimpleNamespace(root=root, cfg=cfg, outs=[s["out"] for s in steps], data="data-1", calls=[])

    def execute(step, out_dir, cwd, stream=True):
        state.calls.append(step["out"])
        (Path(out_dir) / f"{step['out']}.ipynb").write_text("{}")
        if "run" in step:                                      # the training notebook finishes its run
            run = Path(step["run"])
            run.mkdir(parents=True, exist_ok=True)
            (run / "best.pt").write_bytes(b"")
            digest = cfg.run_digest(step["params"]["dataset"], step["params"]["model"])
            (run / "done.json").write_text(json.dumps({"train_s": 12.5, "config_digest": digest}))
        return 1.5

    monkeypatch.setattr(pipeline, "project_root", lambda: root)
    monkeypatch.setattr(pipeline, "book_dir", lambda profile: root / "build" / f"book-{profile}")
    monkeypatch.setattr(pipeline.config_mod, "load", lambda profile, **kw: cfg)
    monkeypatch.setattr(pipeline, "execute", execute)
    monkeypatch.setattr(pipeline, "_data_digest", lambda c: state.data)
    monkeypatch.setattr(report, "git_commit", lambda: "0123456789ab")
    monkeypatch.setattr(report, "hardware", lambda: "test CPU")

    def run(**kw):
        state.calls.clear()
        assert pipeline.run_pipeline("smoke", build=False, **kw) == 0
        return list(state.calls)

    state.run = run
    state.nb_dir = root / "build" / "book-smoke" / "notebooks"
    state.stamps = lambda: json.loads((cfg.results() / "stamps.json").read_text())
    return state


def test_main_job_executes_every_step_once_then_skips_them(job):
    assert job.run() == job.outs                                    # first time: everything, in plan order
    stamps = job.stamps()
    assert sorted(stamps) == sorted(job.outs)
    src = pipeline._sources_digest()
    for step in pipeline.plan(job.cfg):
        assert stamps[step["out"]]["stamp"] == pipeline.stamp(step, job.cfg, "data-1", src)
        assert stamps[step["out"]]["wall_s"] == 1.5 and "reused_training_s" not in stamps[step["out"]]
    assert job.run() == []                                          # nothing changed: nothing executed
    assert job.stamps() == stamps
    metrics = json.loads((job.cfg.results() / "metrics.json").read_text())
    assert metrics["wall_time_s"]["total"] == pytest.approx(1.5 * len(job.outs))


def test_a_changed_notebook_reruns_it_and_every_later_step(job):
    job.run()
    (job.root / "notebooks" / "08_karyotype.ipynb").write_text('{"edited": true}')
    calls = job.run()
    assert calls[0] == "08_karyotype" and calls == job.outs[job.outs.index("08_karyotype"):]
    assert "07_model_comparison" not in calls and len(calls) < len(job.outs)
    assert job.run() == []                                          # its new stamp is recorded
    (job.root / "notebooks" / "01_data_exploration.ipynb").write_text('{"edited": true}')
    assert job.run() == job.outs                                    # the first notebook: everything


def test_a_new_experiments_table_reruns_the_chapters_that_read_it(job):
    job.run()
    first = min(job.outs.index(o) for o in pipeline.EXPERIMENT_READERS if o in job.outs)
    for name in pipeline.EXPERIMENT_FILES:               # absent, then written by chromo.lab.experiments
        (job.cfg.results() / name).write_text("experiment\npki3-profile\n")
        assert job.run() == job.outs[first:]
        assert job.run() == []
    assert job.outs[first] == "07_model_comparison"


def test_experiment_readers_are_the_notebooks_that_read_the_table():
    """The notebooks read the experiments table (and curves.csv) through chromo.book.recognition.load."""
    nbs = config.project_root() / "notebooks"
    readers = {p.stem for p in nbs.glob("*.ipynb") if "recognition.load(" in p.read_text()}
    assert readers == set(pipeline.EXPERIMENT_READERS)


def test_a_missing_output_or_unfinished_run_reruns_from_that_step(job):
    job.run()
    (job.nb_dir / "04_hausdorff_cosine_vs_euclid.ipynb").unlink()
    assert job.run() == job.outs[job.outs.index("04_hausdorff_cosine_vs_euclid"):]
    bio = "02_train_bioimlab_eresnet-u1c0"
    (job.cfg.run_dir("bioimlab", "eresnet-u1c0") / "done.json").unlink()   # the run is not finished
    assert job.run() == job.outs[job.outs.index(bio):]
    assert "reused_training_s" not in job.stamps()[bio]             # it was trained, not reused
    stale = {"train_s": 9.0, "config_digest": "other settings"}     # finished, but with other settings
    (job.cfg.run_dir("bioimlab", "eresnet-u1c0") / "done.json").write_text(json.dumps(stale))
    job.data = "data-3"
    job.run()
    assert "reused_training_s" not in job.stamps()[bio]             # retrained by its notebook, not reused


def test_changed_data_sources_stamp_record_or_force_rerun(job):
    job.run()
    job.data = "data-2"                                             # the data listing changed
    assert job.run() == job.outs
    stamps = job.stamps()
    for d in ("pki3", "bioimlab"):                                  # finished runs were reused, and said so
        assert stamps[f"02_train_{d}_eresnet-u1c0"]["reused_training_s"] == 12.5
    assert "reused_training_s" not in stamps["03_label_feature_vectors"]
    metrics = json.loads((job.cfg.results() / "metrics.json").read_text())
    assert metrics["reused_training_s"] == 25.0
    assert metrics["fresh_main_job_estimate_s"] == pytest.approx(1.5 * len(job.outs) + 25.0)
    (job.root / "chromo" / "module.py").write_text("x = 2\n")     # the package sources changed
    assert job.run() == job.outs
    assert job.run() == []
    stamps = job.stamps()
    stamps["07_model_comparison"]["stamp"] = "0" * 16               # a stamp recorded by other inputs
    (job.cfg.results() / "stamps.json").write_text(json.dumps(stamps))
    assert job.run() == job.outs[job.outs.index("07_model_comparison"):]
    assert job.run(force=True) == job.outs


def test_with_chromo_torchrun_the_main_job_trains_missing_runs_with_it(job, monkeypatch):
    """CHROMO_TORCHRUN set: each run not yet finished is trained by `$CHROMO_TORCHRUN -m chromo train ...`
    before its chapter; finished runs are not; the step's wall time includes that training."""
    launched = []

    def fake_run(cmd, cwd=None):
        launched.append(cmd)
        d, m = cmd[cmd.index("--dataset") + 1], cmd[cmd.index("--model") + 1]
        run = job.cfg.run_dir(d, m)
        run.mkdir(parents=True, exist_ok=True)
        (run / "best.pt").write_bytes(b"")
        (run / "done.json").write_text(json.dumps({"train_s": 3.0}))
        return SimpleNamespace(returncode=0)

    monkeypatch.setattr(pipeline.subprocess, "run", fake_run)
    monkeypatch.setenv("CHROMO_TORCHRUN", "torchrun --nproc_per_node 2")
    job.run()
    trains = [o for o in job.outs if o.startswith("02_train")]
    assert len(launched) == len(trains)
    assert launched[0][:4] == ["torchrun", "--nproc_per_node", "2", "-m"]
    assert launched[0][4:7] == ["chromo", "train", "--config"] and "--model" in launched[0]
    # everything re-executes; runs are finished
    job.data = "data-2"
    launched.clear()
    job.run()
    assert launched == []


def test_a_failed_torchrun_stops_the_main_job(job, monkeypatch):
    monkeypatch.setattr(pipeline.subprocess, "run", lambda cmd, cwd=None: SimpleNamespace(returncode=1))
    monkeypatch.setenv("CHROMO_TORCHRUN", "torchrun --nproc_per_node 2")
    with pytest.raises(RuntimeError, match="failed \\(exit 1\\)"):
        job.run()


# --- metrics.json: the notebooks' records merged
# -------------------------------------------------------------
def _record(method, acc, dataset="pki3"):
    return {"dataset": dataset, "model": "eresnet-u1c0", "method": method, "query": "ki", "distance": None,
            "accuracy_mean_cell": acc}


def _write_records(folder, name, records=(), karyotype=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps({"records": list(records), "karyotype": karyotype or {}}))


def test_merge_metrics_merges_the_records_of_every_notebook(tmp_path):
    cfg = config.load("smoke", runs_dir=str(tmp_path / "runs"), results_dir=str(tmp_path / "results"))
    rec = cfg.results() / "records"
    _write_records(rec, "07_model_comparison", [_record("dcnn", 0.9), _record("assign", 0.95)],
                   {"pki3": {"cells": 6}})
    _write_records(rec, "04_hausdorff_cosine_vs_euclid", [_record("lfv", 0.8)])
    _write_records(rec, "08_karyotype", [], {"pki3": {"cells": 7}, "bioimlab": {"cells": 5}})
    run = cfg.run_dir("pki3", "eresnet-u1c0")
    run.mkdir(parents=True)
    (run / "done.json").write_text(json.dumps({"train_s": 40.0}))      # bioimlab: no finished run
    stamps = {"02_train_pki3_eresnet-u1c0": {"wall_s": 1.0, "reused_training_s": 40.0},
              "04_hausdorff_cosine_vs_euclid": {"wall_s": 2.0}, "07_model_comparison": {"wall_s": 3.5}}
    path = report.merge_metrics(cfg, stamps)
    assert path == cfg.results() / "metrics.json"
    m = json.loads(path.read_text())
    # records in the order of their files' names (04, 07, 08); karyotype entries of a later file win
    assert m["records"] == [_record("lfv", 0.8), _record("dcnn", 0.9), _record("assign", 0.95)]
    assert m["karyotype"] == {"pki3": {"cells": 7}, "bioimlab": {"cells": 5}}
    assert m["wall_time_s"] == {"02_train_pki3_eresnet-u1c0": 1.0, "04_hausdorff_cosine_vs_euclid": 2.0,
                                "07_model_comparison": 3.5, "total": 6.5}
    assert m["training_time_s"] == {"pki3/eresnet-u1c0": 40.0}
    assert m["reused_training_s"] == 40.0 and m["fresh_main_job_estimate_s"] == 46.5
    assert m["profile"] == "smoke"


def test_merge_metrics_reads_the_files_afresh_and_a_reruns_file_replaces_the_stale_one(tmp_path):
    cfg = config.load("smoke", runs_dir=str(tmp_path / "runs"), results_dir=str(tmp_path / "results"))
    rec, rerun = cfg.results() / "records", tmp_path / "rerun" / "records"
    _write_records(rec, "04_hausdorff_cosine_vs_euclid", [_record("lfv", 0.8), _record("fvm", 0.7)])
    _write_records(rec, "07_model_comparison", [_record("dcnn", 0.9)], {"pki3": {"cells": 6}})
    _write_records(rec, "99_retired_chapter", [_record("old", 0.1)])   # no stamp: no longer executed
    stamps = {"04_hausdorff_cosine_vs_euclid": {"wall_s": 2.0}, "07_model_comparison": {"wall_s": 3.5}}
    m = json.loads(report.merge_metrics(cfg, stamps).read_text())
    # every file in records/ is merged, stamped or not (a retired chapter's file stays until removed)
    assert [r["method"] for r in m["records"]] == ["lfv", "fvm", "dcnn", "old"]
    assert "99_retired_chapter" not in m["wall_time_s"]
    (rec / "99_retired_chapter.json").unlink()
    m = json.loads(report.merge_metrics(cfg, stamps).read_text())
    assert [r["method"] for r in m["records"]] == ["lfv", "fvm", "dcnn"]      # merged afresh, not accumulated
    # a rerun of 04 wrote its own file: it replaces the reference file of that name as a whole
    _write_records(rerun, "04_hausdorff_cosine_vs_euclid", [_record("lfv", 0.85)])
    m = report.merged_metrics(cfg, stamps, [rec, rerun])
    assert m["records"] == [_record("lfv", 0.85), _record("dcnn", 0.9)]
    assert m["karyotype"] == {"pki3": {"cells": 6}}
    written = json.loads((rec / "04_hausdorff_cosine_vs_euclid.json").read_text())
    assert written["records"][1]["method"] == "fvm"


def test_present_folds_code_and_states_the_parameters_once(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Title"),
                nbformat.v4.new_code_cell('config = "configs/smoke.yaml"\nbeta = 40',
                                          metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell('config = "configs/cpu.yaml"',
                                          metadata={"tags": ["injected-parameters"]}),
                nbformat.v4.new_code_cell("x = 1"),
                nbformat.v4.new_code_cell("y = 2", metadata={"tags": ["remove-input"]})]
    path = tmp_path / "05_label_redistribution.ipynb"
    nbformat.write(nb, path)
    pipeline._present(path, {"nb": "05_label_redistribution", "params": {"config": "configs/cpu.yaml",
                                                                         "beta": 30}})
    cells = nbformat.read(path, as_version=4).cells
    tags = [c.metadata.get("tags", []) for c in cells]
    assert "remove-cell" in tags[1] and "remove-cell" in tags[2]          # both parameters cells hidden
    # the one line, after the injected cell
    line = cells[3].source
    assert "`config = 'configs/cpu.yaml'`" in line
    assert "`beta = 30`" in line and "`distance = None` (the profile's 'cosine')" in line
    assert tags[4] == ["hide-input"] and tags[5] == ["remove-input"]       # code folded; explicit tags kept
    assert sum("Parameters of this execution" in c.source for c in cells) == 1
