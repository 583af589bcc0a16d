"""Small helpers every notebook calls: setup (config, seeds, plot style), glue, the nbval check cell,
records for metrics.json, and the colophon."""
from __future__ import annotations

import json
import random
import time
from pathlib import Path

import numpy as np

from chromo import config as config_mod
from chromo.io import (atomic_write_json, atomic_write_text, git_commit, hardware, jsonable,  # noqa: F401
                       rel, versions)   # rel: for notebooks
from chromo.run import Run

_T0 = [time.time()]


def setup(config: str, seed: int | None = None, **overrides):
    """Load the profile, seed every generator, set the plot style; returns the Config."""
    import matplotlib.pyplot as plt
    import torch

    cfg = config_mod.load(config, **({"seed": seed} if seed is not None else {}), **overrides)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    plt.rcParams.update({"figure.dpi": 90, "savefig.dpi": 90, "axes.grid": True, "grid.alpha": 0.3})
    import pandas as pd

    pd.set_option("display.max_colwidth", None)   # tables such as Table 3's wrong predictions are never cut
    _T0[0] = time.time()
    return cfg


def glue(name: str, value, display: bool = False) -> None:
    """myst-nb glue with floats rounded to 4 places, so prose and regression checks agree."""
    from myst_nb import glue as _glue

    if isinstance(value, (float, np.floating)):
        value = round(float(value), 4)
    elif isinstance(value, np.integer):
        value = int(value)
    _glue(name, value, display=display)


def check(**values) -> None:
    """Print key numbers one per line, rounded: the cells tagged for nbval regression call this."""
    for k, v in values.items():
        if isinstance(v, (float, np.floating)):
            v = f"{float(v):.4f}"
        print(f"{k}: {v}")


def check_range(name: str, value, low: float = float("-inf"), high: float = float("inf")) -> bool:
    """For a number that differs between CPUs and thread counts (a short bf16 training run): print
    whether it lies in [low, high] rather than the number, so the nbval regression compares the statement.
    The caller writes the tolerance's reason beside the call."""
    ok = bool(low <= float(value) <= high)
    print(f"{name} in [{low:.4g}, {high:.4g}]: {ok}")
    return ok


def save_records(cfg, name: str, records: list | None = None, karyotype: dict | None = None,
                 **sections) -> None:
    """Records for metrics.json: `records` (one per method, query, ...), `karyotype` (per data set) and any
    other named section (e.g. review={...}), each merged across chapters. Only the main job writes the
    reference records in results/<profile>/records; any other execution (chromo run-notebook, raw papermill,
    Jupyter, nbval) writes to the rerun folder (out/reruns/<profile>/records) and says so."""
    from chromo.book import rerun

    path = atomic_write_json(rerun.records_dir(cfg) / f"{name}.json",
                             {"records": records or [], "karyotype": karyotype or {}, **sections})
    if not rerun.is_reference_run():
        print(f"a rerun: records written to {rel(path)} (the reference records in "
              f"{rel(cfg.results() / 'records')} are untouched)")


def book_dir(profile: str) -> Path:
    """cpu is the reference run rendered in book/; other profiles build a copy under build/."""
    root = config_mod.project_root()
    return root / "book" if profile == "cpu" else root / "build" / f"book-{profile}"


def save_table(cfg, df, name: str) -> Path:
    """A chapter's full table as CSV in the book (<book>/tables/<name>.csv), for the chapter to link with
    {download}`the full table (CSV) <../tables/<name>.csv>`; a rerun writes it to its own folder instead."""
    from chromo.book import rerun

    folder = book_dir(cfg.profile) if rerun.is_reference_run() else rerun.rerun_root() / cfg.profile
    return atomic_write_text(folder / "tables" / f"{name}.csv", df.to_csv(index=False))


def colophon(cfg) -> None:
    """Versions, git commit, config hash, device, wall time of this notebook."""
    v = versions()
    print(f"profile: {cfg.profile} (config digest {cfg.digest()}), seed {cfg.seed}")
    print(f"git commit: {git_commit()}")
    print(f"hardware: {hardware()}")
    print("versions: " + ", ".join(f"{k} {x}" for k, x in v.items()))
    print(f"wall time of this notebook: {time.time() - _T0[0]:.0f} s")


def table(df, floatfmt: int = 3):
    """A DataFrame rounded for display."""
    return df.round(floatfmt)


def load_metrics(cfg) -> dict:
    """metrics.json merged afresh from the records the chapters wrote (so a chapter re-executed alone,
    by papermill or nbval, sees the current records), with the wall times of the pipeline's stamps.
    The main job writes it to results/<profile>/metrics.json; a rerun merges the reference records with
    its own (its own win, file by file) and writes nothing."""
    from chromo.book import rerun

    stamps_path = cfg.results() / "stamps.json"
    stamps = json.loads(stamps_path.read_text()) if stamps_path.exists() else {}
    if rerun.is_reference_run():
        return json.loads(merge_metrics(cfg, stamps).read_text())
    # the same JSON round trip as the written file, so a rerun sees exactly what the main job would
    return json.loads(json.dumps(merged_metrics(cfg, stamps, rerun.record_dirs(cfg)), sort_keys=True,
                                 default=jsonable))


def merge_metrics(cfg, stamps: dict) -> Path:
    """metrics.json from the records the notebooks wrote, with wall times and provenance."""
    return atomic_write_json(cfg.results() / "metrics.json", merged_metrics(cfg, stamps))


def merged_metrics(cfg, stamps: dict, record_dirs: list[Path] | None = None) -> dict:
    """The content of metrics.json; records from record_dirs (default: the reference records), a later
    folder's file replacing an earlier one's of the same name (a rerun's records over the reference)."""
    files = {}
    for d in record_dirs or [cfg.results() / "records"]:
        files.update({f.name: f for f in Path(d).glob("*.json")})
    recs, sections = [], {"karyotype": {}}
    for _, f in sorted(files.items()):
        obj = json.loads(f.read_text())
        recs += obj.pop("records", [])
        for key, value in obj.items():
            sections.setdefault(key, {}).update(value)
    wall = {k: v["wall_s"] for k, v in stamps.items()}
    train_s = {}
    for d, models in cfg.training.models.items():
        for model in models:
            run = Run.of(cfg, d, model)
            if run.is_finished():
                train_s[f"{d}/{model}"] = run.done().get("train_s")
    reused = sum(v.get("reused_training_s") or 0 for v in stamps.values())
    total = round(sum(wall.values()), 1)
    out = {"profile": cfg.profile, "git_commit": git_commit(), "hardware": hardware(),
           "wall_time_s": {**wall, "total": total}, "training_time_s": train_s,
           # the last executions reused finished runs for this many training seconds; a fresh clone pays them
           "reused_training_s": round(reused, 1), "fresh_main_job_estimate_s": round(total + reused, 1),
           "records": recs, **sections}
    return out
