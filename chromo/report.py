"""Small helpers every notebook calls: setup (config, seeds, plot style), glue, the nbval check cell,
records for metrics.json, and the colophon."""
from __future__ import annotations

import json
import random
import time

import numpy as np

from chromo import config as config_mod
from chromo.io import atomic_write_json, git_commit, hardware, jsonable, rel, versions  # noqa: F401 (rel: for notebooks)

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


def save_records(cfg, name: str, records: list | None = None, karyotype: dict | None = None) -> None:
    """Records for metrics.json. Only the main job (chromo.pipeline) writes the reference records in
    results/<profile>/records; any other execution (chromo run-notebook, raw papermill, Jupyter, nbval)
    writes to the rerun folder (out/reruns/<profile>/records) and says so."""
    from chromo import rerun

    path = atomic_write_json(rerun.records_dir(cfg) / f"{name}.json",
                             {"records": records or [], "karyotype": karyotype or {}})
    if not rerun.is_reference_run():
        print(f"a rerun: records written to {rel(path)} (the reference records in "
              f"{rel(cfg.results() / 'records')} are untouched)")


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
    from chromo import rerun
    from chromo.pipeline import merge_metrics, merged_metrics

    stamps_path = cfg.results() / "stamps.json"
    stamps = json.loads(stamps_path.read_text()) if stamps_path.exists() else {}
    if rerun.is_reference_run():
        return json.loads(merge_metrics(cfg, stamps).read_text())
    # the same JSON round trip as the written file, so a rerun sees exactly what the main job would
    return json.loads(json.dumps(merged_metrics(cfg, stamps, rerun.record_dirs(cfg)), sort_keys=True,
                                 default=jsonable))


