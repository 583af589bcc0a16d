"""The main job: execute the notebooks in order with papermill into the book, then build it.

A notebook whose inputs (its source, the chromo sources, the profile config, its parameters, the data
listing, and for the chapters that read it the experiments table: EXPERIMENT_READERS) are unchanged since
its last execution, and whose outputs still exist, is not executed again; a changed one is, with every
notebook after it. Wall time per notebook goes to metrics.json.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from chromo import PAPER_MODEL, PUBLIC_DATASETS
from chromo import config as config_mod
from chromo.config import project_root
from chromo.run import Run
from chromo.book.report import book_dir, merge_metrics
from chromo.io import atomic_write_json

STATIC = ["intro.md", "data.md", "method.md", "references.md", "references.bib"]
PARTS = [("Data", ("01",)), ("Training", ("02", "11")), ("The paper's analyses", ("03", "04", "05", "06",
                                                                                  "07", "13")),
         ("Beyond the paper", ("08", "09", "14")), ("Paper and run record", ("12", "10"))]


def write_toc(cfg, bdir: Path) -> None:
    """_toc.yml for the profile's plan: intro, data, method, the executed notebooks, the reproducibility
    chapter (notebook 15) and references."""
    outs = [s["out"] for s in plan(cfg)]
    lines = ["format: jb-book", "root: intro", "parts:", "  - caption: Background", "    chapters:",
             "      - file: data", "      - file: method"]
    for caption, prefixes in PARTS:
        files = [o for o in outs if o[:2] in prefixes]
        if files:
            lines += [f"  - caption: {caption}", "    chapters:"] + [f"      - file: notebooks/{o}" for o
                                                                     in files]
    about = [f"      - file: notebooks/{o}" for o in outs if o[:2] == "15"]     # the reproducibility chapter
    about.append("      - file: references")
    lines += ["  - caption: About", "    chapters:"] + about
    (bdir / "_toc.yml").write_text("\n".join(lines) + "\n")


def plan(cfg) -> list[dict]:
    """(notebook, output name, parameters) in execution order for a profile (the book's order is PARTS': a
    chapter that reads another's records runs after it)."""
    conf = f"configs/{cfg.profile}.yaml"
    p = lambda **kw: {"config": conf, **kw}  # noqa: E731
    steps = [{"nb": "01_data_exploration", "out": f"01_data_{d}", "params": p(dataset=d), "title": d}
             for d in PUBLIC_DATASETS]
    for d, models in cfg.training.models.items():
        for model in models:
            steps.append({"nb": "02_train", "out": f"02_train_{d}_{model}", "params": p(dataset=d,
                                                                                        model=model),
                          "run": str(cfg.run_dir(d, model)), "title": f"{model} on {d}"})
    one = {"dataset": "pki3", "model": PAPER_MODEL}
    # 11 is read in the Training part but runs after 07 and 08, whose records its targets table reads;
    # 15 runs last: it reads every record
    order = [("03_label_feature_vectors", one), ("04_hausdorff_cosine_vs_euclid", one),
             ("05_label_redistribution", one), ("06_failure_gallery", one), ("07_model_comparison", {}),
             ("13_extended_block", one), ("08_karyotype", {}), ("09_classify_a_cell", one), ("14_review", {}),
             ("11_recognition", {}), ("12_claims", {}), ("10_paper_vs_ours", {}), ("15_reproducibility", {})]
    steps += [{"nb": nb, "out": nb, "params": p(**kw)} for nb, kw in order]
    return steps


# The nbval regression (tests/regression): the smoke plan, with the analysis chapters reading the
# committed fixture runs through this profile (fixed features: the same numbers on every CPU).
REGRESS_CONFIG = "tests/regression/regress.yaml"
ON_FIXTURE = ("03", "04", "05", "06", "07", "08", "10", "12", "14")


def regression_plan() -> list[dict]:
    """The smoke plan; the chapters of ON_FIXTURE read the fixture runs, the others the smoke runs."""
    steps = []
    for s in plan(config_mod.load("smoke")):
        if s["nb"][:2] in ON_FIXTURE:
            s = {**s, "params": {**s["params"], "config": REGRESS_CONFIG}}
        steps.append(s)
    return steps


def update_regression() -> None:
    """Re-execute the regression notebooks and store them in tests/regression (after an intended change)."""
    out = project_root() / "tests" / "regression"
    for old in out.glob("*.ipynb"):
        old.unlink()
    for step in regression_plan():
        execute(step, out, project_root())


def _sources_digest() -> str:
    h = hashlib.sha256()
    for p in sorted((project_root() / "chromo").rglob("*.py")):
        h.update(p.read_bytes())
    return h.hexdigest()


# the chapters that read tables the lab writes, not the main job (python -m chromo.lab.experiments: the
# experiments table and curves; chromo.lab.context_study --record: the context/ tables): a new table
# re-executes them (and, as with any change, every chapter after them)
EXPERIMENT_READERS = ("07_model_comparison", "10_paper_vs_ours", "11_recognition", "12_claims",
                      "15_reproducibility")
EXPERIMENT_FILES = ("experiments.csv", "curves.csv")
READS = {**{nb: EXPERIMENT_FILES for nb in EXPERIMENT_READERS}, "14_review": ("context",)}


def _result_bytes(path: Path) -> bytes:
    """A result file's bytes, a folder's files (names and bytes, in order), or b"absent"."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path] * path.exists()
    return b"".join(f"{p.name}:{p.stat().st_size}:".encode() + p.read_bytes() for p in files) or b"absent"


def stamp(step: dict, cfg, data_digest: str, src_digest: str) -> str:
    nb = project_root() / "notebooks" / f"{step['nb']}.ipynb"
    h = hashlib.sha256(nb.read_bytes())
    h.update((project_root() / "configs" / f"{cfg.profile}.yaml").read_bytes())
    h.update(cfg.digest().encode())                  # the resolved settings: a change of its base counts too
    for name in READS.get(step["nb"], ()):
        h.update(name.encode() + _result_bytes(cfg.results() / name))
    h.update(json.dumps(step["params"], sort_keys=True).encode())
    h.update(src_digest.encode())
    h.update(data_digest.encode())
    return h.hexdigest()[:16]


def _data_digest(cfg) -> str:
    from chromo.data.manifest import listing_digest

    try:
        root = cfg.data_root()
    except config_mod.ConfigError:
        return "no-data"
    return "".join(listing_digest(d, root) for d in PUBLIC_DATASETS if (root / d).is_dir())


def _retitle(path: Path, suffix: str) -> None:
    """Add the run's subject to the chapter title (one notebook executed for several datasets or models)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for c in nb.cells:
        if c.cell_type == "markdown" and c.source.startswith("# "):
            first, _, rest = c.source.partition("\n")
            c.source = f"{first} ({suffix})\n{rest}"
            break
    nbformat.write(nb, path)


def _shown(name: str, value, matching) -> str:
    """`name = value`; a matching setting left None says the profile's value it resolved to (`matching`:
    the profile's cfg.matching, or None without one)."""
    text = f"`{name} = {value!r}`"
    if value is None and name in ("beta", "gamma", "distance") and matching is not None:
        text += f" (the profile's {getattr(matching, name)!r})"
    return text


def _present(path: Path, step: dict) -> None:
    """How an executed notebook reads in the book: code inputs folded away (Jupyter Book's hide-input, one
    click to show), the notebook's default parameters cell and papermill's injected one removed, and in
    their place one line with the parameters this execution ran with."""
    import nbformat

    from chromo.book.rerun import notebook_parameters

    nb = nbformat.read(path, as_version=4)
    used = {**notebook_parameters(project_root() / "notebooks" / f"{step['nb']}.ipynb"), **step["params"]}
    matching = config_mod.load(project_root() / used["config"]).matching if used.get("config") else None
    line = nbformat.v4.new_markdown_cell(
        "**Parameters of this execution:** " + ", ".join(_shown(k, v, matching) for k, v in used.items()) +
        f" (rerun with others: `chromo run-notebook {step['nb'][:2]} -p NAME VALUE`)")
    line.id = "run-parameters"
    tagged = lambda c, t: t in c.metadata.get("tags", [])  # noqa: E731
    last = [c for c in nb.cells if tagged(c, "injected-parameters") or tagged(c, "parameters")][-1:]
    cells = []
    for c in nb.cells:
        tags = c.metadata.setdefault("tags", [])
        if tagged(c, "parameters") or tagged(c, "injected-parameters") or tagged(c, "nbval-check"):
            tags.append("remove-cell")        # the regression's checks run, the reader does not see them
        elif c.cell_type == "code" and not {"remove-input", "remove-cell", "hide-input"} & set(tags):
            tags.append("hide-input")
        cells += [c, line] if c in last else [c]
    nb.cells = cells
    nbformat.write(nb, path)


# e.g. "torchrun --nproc_per_node 4": the main job trains each missing run with it
TORCHRUN = "CHROMO_TORCHRUN"


def launch_training(step: dict) -> float:
    """Train the run of a 02_train step data-parallel: `$CHROMO_TORCHRUN -m chromo train --config ...
    --dataset ... --model ...` (chromo.distributed); the notebook then finds the run finished and reports it.
    Returns the seconds it took."""
    import shlex

    p = step["params"]
    cmd = shlex.split(os.environ[TORCHRUN]) + ["-m", "chromo", "train", "--config", p["config"],
                                               "--dataset", p["dataset"], "--model", p["model"]]
    print(f"[chromo book] training with {TORCHRUN}: {' '.join(cmd)}", flush=True)
    t = time.time()
    rc = subprocess.run(cmd, cwd=project_root()).returncode
    if rc != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {rc}); its output is above")
    return time.time() - t


def execute(step: dict, out_dir: Path, cwd: Path, stream: bool = True) -> float:
    import papermill as pm

    t = time.time()
    src = project_root() / "notebooks" / f"{step['nb']}.ipynb"
    dst = out_dir / f"{step['out']}.ipynb"
    tmp = dst.with_name(f".{dst.name}.tmp.ipynb")
    print(f"[chromo book] executing {step['nb']} -> {dst.relative_to(project_root())} {step['params']}",
          flush=True)
    from chromo.book.rerun import reference_env

    try:
        with reference_env():  # the main job's kernels write the reference records (chromo.book.rerun)
            pm.execute_notebook(str(src), str(tmp), parameters=step["params"], cwd=str(cwd),
                                kernel_name="python3",
                                progress_bar=False, request_save_on_cell_execute=False,
                                stdout_file=sys.stdout if stream else None)  # epochs etc. as they happen
        if step.get("title"):
            _retitle(tmp, step["title"])
        _present(tmp, step)
        tmp.replace(dst)
    finally:
        tmp.unlink(missing_ok=True)
    return round(time.time() - t, 1)


def run_pipeline(profile: str = "cpu", force: bool = False, build: bool = True, only=None) -> int:
    cfg = config_mod.load(profile)
    bdir = book_dir(profile)
    nb_dir = bdir / "notebooks"
    nb_dir.mkdir(parents=True, exist_ok=True)
    if bdir != project_root() / "book":
        for name in STATIC:
            shutil.copy2(project_root() / "book" / name, bdir / name)
    write_toc(cfg, bdir)
    stamps_path = cfg.results() / "stamps.json"
    stamps = json.loads(stamps_path.read_text()) if stamps_path.exists() else {}
    data_digest, src_digest = _data_digest(cfg), _sources_digest()
    dirty = force
    t0 = time.time()
    steps = [st for st in plan(cfg) if not only or any(st["out"].startswith(o) for o in only)]
    for i, step in enumerate(steps, 1):
        s = stamp(step, cfg, data_digest, src_digest)
        have = (nb_dir / f"{step['out']}.ipynb").exists() and ("run" not in step
                                                               or Run(step["run"]).is_finished())
        if not dirty and have and stamps.get(step["out"], {}).get("stamp") == s:
            print(f"[chromo book] up to date: {step['out']}")
            continue
        dirty = True  # this one and every later one
        left = [stamps.get(st["out"], {}).get("wall_s") for st in steps[i - 1:]]
        known = sum(w for w in left if w)
        never = f" ({left.count(None)} never run here)" if None in left else ""
        print(f"[chromo book] step {i}/{len(steps)}, {time.time() - t0:.0f} s so far; the remaining steps "
              f"took {known / 60:.1f} min last time{never}", flush=True)
        run = Run(step["run"]) if "run" in step else None
        # a finished run of these settings is reused, not retrained (a stale one is retrained by the notebook)
        reused = run is not None and run.is_done(cfg, step["params"]["dataset"], step["params"]["model"])
        launch = run is not None and not reused and os.environ.get(TORCHRUN)
        launched = launch_training(step) if launch else 0.0
        # torchrun's training, then the notebook
        wall = round(launched + execute(step, nb_dir, project_root()), 1)
        stamps[step["out"]] = {"stamp": s, "wall_s": wall, "notebook": step["nb"], "params": step["params"]}
        if reused:
            stamps[step["out"]]["reused_training_s"] = run.done().get("train_s")
        atomic_write_json(stamps_path, stamps)
        merge_metrics(cfg, stamps)
    merge_metrics(cfg, stamps)
    print(f"[chromo book] notebooks done in {time.time() - t0:.0f} s")
    if build:
        return build_book(bdir)
    return 0


def build_book(bdir: Path) -> int:
    """Jupyter Book 1 with the root _config.yml; warnings are errors."""
    cmd = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(bdir), "--config",
           str(project_root() / "_config.yml"),
           "--toc", str(bdir / "_toc.yml"), "--path-output", str(bdir), "-W", "--keep-going"]
    print("[chromo book]", " ".join(cmd), flush=True)
    return subprocess.call(cmd, cwd=project_root())


if __name__ == "__main__":  # python -m chromo.book.pipeline update-regression
    if sys.argv[1:] != ["update-regression"]:
        sys.exit("usage: python -m chromo.book.pipeline update-regression")
    update_regression()
