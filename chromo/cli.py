"""Command line: chromo data / train / features / classify / book."""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path


def _cfg(args):
    from chromo import config

    over = {}
    if getattr(args, "data_dir", None):
        over["data_dir"] = args.data_dir
    return config.load(args.config, **over)


def cmd_data_summary(args) -> int:
    from chromo.data.manifest import build_manifest, cell_table

    cfg = _cfg(args)
    root = None if args.dataset == "synthetic" else cfg.data_root()
    m, rep = build_manifest(args.dataset, root, "skip" if args.skip_unreadable else "raise", cfg.seed)
    cells = cell_table(m)
    out = {"dataset": args.dataset, "data_dir": str(root) if root else None, "cells": len(cells), "images": len(m),
           "slides": int(m["slide"].nunique()) if args.dataset != "bioimlab" else None,
           "classes": int(m["label"].nunique()),
           "cell_sizes": {str(k): int(v) for k, v in cells["count"].value_counts().sort_index().items()},
           "abnormal_cells": int(cells["abnormal"].sum()), "incomplete_cells": int(cells["incomplete"].sum()),
           "formulas": {k: int(v) for k, v in cells["formula"].value_counts().items()},
           "converted_to_grayscale": rep.converted, "excluded": rep.excluded, "skipped": rep.skipped}
    if args.manifest_out:
        from chromo.io import atomic_write_text

        atomic_write_text(Path(args.manifest_out), m.to_csv(index=False))
        out["manifest"] = args.manifest_out
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for k, v in out.items():
            if k not in ("formulas", "excluded", "skipped"):
                print(f"{k:>24}: {v}")
        print(f"{'excluded':>24}: {len(rep.excluded)}")
        for e in rep.excluded + rep.skipped:
            print(f"{'':>26}{e['path']}: {e['reason']}")
    return 0


def cmd_data_verify(args) -> int:
    cfg = _cfg(args)
    folder = cfg.data_root() / args.dataset
    sums = folder / "SHA256SUMS"
    if not sums.exists():
        print(f"{sums}: no checksum file", file=sys.stderr)
        return 2
    bad = 0
    lines = [line.split(None, 1) for line in sums.read_text().splitlines() if line.strip()]
    from tqdm import tqdm

    for digest, name in tqdm(lines, desc=f"verify {args.dataset}", mininterval=2, disable=True if args.quiet else None):
        p = folder / name.strip()
        if not p.exists():
            print(f"MISSING {p}", file=sys.stderr)
            bad += 1
        elif hashlib.sha256(p.read_bytes()).hexdigest() != digest:
            print(f"MISMATCH {p}", file=sys.stderr)
            bad += 1
    print(f"{args.dataset}: {len(lines) - bad} of {len(lines)} files match SHA256SUMS")
    return 1 if bad else 0


def cmd_data_cache(args) -> int:
    from chromo.data.loader import prepare

    p = prepare(_cfg(args), args.dataset)
    print(json.dumps({k: v for k, v in p.meta.items() if k != "clipped_to_fit"} |
                     {"clipped_to_fit": len(p.meta["clipped_to_fit"])}, indent=2))
    return 0


def cmd_train(args) -> int:
    from chromo.train import train

    print(train(_cfg(args), args.dataset, args.model))
    return 0


def cmd_features(args) -> int:
    from chromo.train import extract_features

    for p in extract_features(Path(args.run), args.split):
        print(p)
    return 0


def cmd_classify(args) -> int:
    from chromo.classify import classify_folder

    reports = classify_folder(Path(args.dir), Path(args.run), Path(args.out), args.force, args.skip_non_images)
    for r in reports:
        extra = f"  (true {r['true_formula']}, accuracy {r['accuracy']:.3f})" if "true_formula" in r else ""
        print(f"{r['cell']}: {r['formula']}{extra}  flags: {'; '.join(r['flags']) or 'none'}")
    print(f"wrote {args.out}")
    return 0


def cmd_book(args) -> int:
    from chromo.pipeline import run_pipeline

    return run_pipeline(args.profile, force=args.force, build=not args.no_build, only=args.only)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="chromo", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p, dataset=True):
        p.add_argument("--config", default="configs/cpu.yaml", help="profile YAML or name (smoke, cpu, gpu)")
        p.add_argument("--data-dir", help="the folder holding pki3/ and bioimlab/ (else CHROMO_DATA, ../shared/data)")
        if dataset:
            p.add_argument("--dataset", required=True, choices=["pki3", "bioimlab", "synthetic"])

    data = sub.add_parser("data", help="inspect, verify and cache the public data").add_subparsers(dest="sub", required=True)
    p = data.add_parser("summary", help="counts, quirks and exclusions of a dataset")
    common(p)
    p.add_argument("--json", action="store_true")
    p.add_argument("--skip-unreadable", action="store_true", help="skip and list unreadable files instead of failing")
    p.add_argument("--manifest-out", help="also write the manifest (one row per image) to this CSV file")
    p.set_defaults(func=cmd_data_summary)
    p = data.add_parser("verify", help="check files against SHA256SUMS; non-zero exit on any mismatch")
    common(p)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_data_verify)
    p = data.add_parser("cache", help="build the packed canvas cache of a dataset")
    common(p)
    p.set_defaults(func=cmd_data_cache)

    p = sub.add_parser("train", help="train a model (resumes an interrupted run; reuses a finished one)")
    common(p)
    p.add_argument("--model", default="eresnet-u1c0")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("features", help="features, logits, labels and cells of a split, to files in the run")
    p.add_argument("--run", required=True)
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.set_defaults(func=cmd_features)

    p = sub.add_parser("classify", help="karyotype one cell (or a folder of cells) from chromosome images")
    p.add_argument("dir")
    p.add_argument("--run", required=True, help="a run directory, e.g. runs/cpu/pki3/eresnet-u1c0")
    p.add_argument("--out", required=True)
    p.add_argument("--force", action="store_true", help="replace a non-empty OUT")
    p.add_argument("--skip-non-images", action="store_true", help="skip (and list) files that are not images")
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("book", help="execute the notebooks with papermill and build the Jupyter Book")
    p.add_argument("--profile", default="cpu")
    p.add_argument("--force", action="store_true", help="re-execute every notebook")
    p.add_argument("--no-build", action="store_true", help="execute only; do not build HTML")
    p.add_argument("--only", nargs="*", help="notebook name prefixes to consider (e.g. 05)")
    p.set_defaults(func=cmd_book)
    return ap


def main(argv=None) -> int:
    from chromo.classify import InputError
    from chromo.config import ConfigError
    from chromo.data.manifest import DataError
    from chromo.train import CheckpointError

    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, DataError, CheckpointError, InputError, ValueError, FileNotFoundError) as e:
        print(f"chromo: error: {e}", file=sys.stderr)
        return 2
