"""One-time migration of trained runs to the run identity of config.SCHEMA 2: each run's config.yaml from the
flat settings to the grouped ones (data, training, matching; lr and lr_by_dataset as one `lr` mapping), and
its identity (done.json, best.pt, last.pt) to the new digest; an experiment run moved from its variant's
folder to its experiment file's. Sources before the runs that start from them. Run once, then deleted.

    python scripts/migrate_runs.py RUNS_ROOT [OLD_NAMES.json]
"""
import json
import shutil
import sys
from pathlib import Path

import torch
import yaml

from chromo import config
from chromo.io import atomic_torch_save, atomic_write_json
from chromo.run import Run


def nested(flat: dict) -> dict:
    flat = dict(flat)
    rates = flat.pop("lr_by_dataset", None) or {}
    lr = flat.pop("lr")
    flat["lr"] = {"default": lr, **rates}
    out = {k: flat.pop(k) for k in ("profile", "seed", "data_dir", "runs_dir", "results_dir", "cache_dir")}
    for g, cls in config.GROUPS.items():
        out[g] = {k: flat.pop(k) for k in list(flat) if k in config._names(cls)}
    for k in ("canvas", "split_fractions", "val_fold"):
        if isinstance(out["data"].get(k), tuple):
            out["data"][k] = list(out["data"][k])
    assert not flat, flat
    return out


OBSOLETE = {"matching": ("low_confidence",)}     # replaced by the assignment's review queue (review_k, set_aside)


def migrate(run: Path) -> str:
    values = yaml.safe_load((run / Run.CONFIG).read_text())
    if "training" not in values:
        values = nested(values)
    for group, keys in OBSOLETE.items():
        for k in keys:
            values.get(group, {}).pop(k, None)
    cfg = config.from_values(values, str(run))
    prov = json.loads((run / Run.PROVENANCE).read_text())
    digest = cfg.run_digest(prov["dataset"], prov["model"])
    config.save_values(values, run / Run.CONFIG)
    if (run / Run.DONE).exists():
        done = json.loads((run / Run.DONE).read_text())
        atomic_write_json(run / Run.DONE, {**done, "config_digest": digest})
    for name in (Run.BEST, Run.LAST):
        if (run / name).exists():
            ck = torch.load(run / name, map_location="cpu", weights_only=True)
            ck["config_digest"] = digest
            atomic_torch_save(run / name, ck)
    return digest


def sources_first(runs: list[Path]) -> list[Path]:
    """Runs without an init_from path first, then those starting from a run already listed."""
    def source(run):
        v = yaml.safe_load((run / Run.CONFIG).read_text())
        init = (v.get("training", v).get("init_from") or {})
        return [p for p in init.values() if p not in config.DATASETS]
    order, left = [], list(runs)
    while left:
        ready = [r for r in left if all(any(str(o).endswith(s.rstrip("/")) for o in order) for s in source(r))]
        if not ready:
            raise SystemExit(f"runs whose sources are missing: {left}")
        order += ready
        left = [r for r in left if r not in ready]
    return order


def slug(name: str) -> str:        # the old variant folder name (chromo.experiments._slug)
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-").replace("--", "-")


def move_experiments(root: Path, old_names: dict) -> dict:
    """Each old variant folder runs/experiments/<slug> moved to runs/experiments/<file>[/fold-k]; returns
    {old folder: new folder} for the init_from paths that name them."""
    moved = {}
    for old, (stem, fold) in old_names.items():
        src = root / "experiments" / slug(old)
        dst = root / "experiments" / stem / (f"fold-{fold}" if fold else "")
        if src.is_dir() and not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            src.rename(dst)
            moved[f"runs/experiments/{slug(old)}/"] = f"runs/experiments/{stem}/" + (f"fold-{fold}/" if fold else "")
    profile, twin = root / "cpu" / "pki3" / "eresnet-u1c0", root / "experiments" / "pki3-profile" / "cpu" / "pki3"
    if profile.is_dir() and not (twin / "eresnet-u1c0").exists():   # the profile's run: experiment pki3-profile's
        twin.mkdir(parents=True, exist_ok=True)
        shutil.copytree(profile, twin / "eresnet-u1c0")
    moved["runs/cpu/pki3/eresnet-u1c0"] = "runs/experiments/pki3-profile/cpu/pki3/eresnet-u1c0"
    for cfg_file in (root / "experiments").rglob(Run.CONFIG):   # init_from paths into a moved folder
        text = cfg_file.read_text()
        for a, b in moved.items():
            text = text.replace(a, b)
        cfg_file.write_text(text)
    return moved


def main(root: str, names: str | None = None) -> None:
    if names:
        print(move_experiments(Path(root), json.load(open(names))))
    runs = sorted(p.parent for p in Path(root).rglob(Run.CONFIG) if (p.parent / Run.PROVENANCE).exists())
    for run in sources_first(runs):
        digest = migrate(run)
        cfg, dataset, model = Run(run).settings()
        ok = Run(run).is_done(cfg, dataset, model)
        print(f"{run}: {digest} {'finished, matches' if ok else 'NOT finished with these settings'}")


if __name__ == "__main__":
    main(*sys.argv[1:])
