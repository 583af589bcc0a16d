"""Command line: chromo data / train / features / classify / runs / book / run-notebook."""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import re
import sys
from pathlib import Path


def _cfg(args):
    from chromo import config

    # --data-dir (relative to the working directory) ranks above CHROMO_DATA, which ranks above the
    # config's data_dir (Config.data_root); it is also recorded as data_dir in a new run's config.yaml
    return config.load(args.config, cli_data_dir=getattr(args, "data_dir", None) or None)


def cmd_data_summary(args) -> int:
    from chromo.data.manifest import build_manifest, cell_table

    cfg = _cfg(args)
    if args.manifest_out:  # refuse before the (slow) manifest is built, so nothing is written
        out_path = Path(args.manifest_out)
        if out_path.is_dir() or args.manifest_out.endswith(("/", "\\")):
            raise ValueError(f"--manifest-out {args.manifest_out}: is a folder; give a file name such as "
                             f"{out_path / (args.dataset + '-manifest.csv')}")
        parent = next((q for q in out_path.absolute().parents if q.exists()), None)
        if parent is not None and not parent.is_dir():
            raise ValueError(f"--manifest-out {args.manifest_out}: {parent} is a file, not a folder")
    root = None if args.dataset == "synthetic" else cfg.data_root()
    m, rep = build_manifest(args.dataset, root, "skip" if args.skip_unreadable else "raise", cfg.seed,
                            cfg.header_cache(args.dataset))
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
    """Every file listed in SHA256SUMS present (else MISSING) with its checksum (else MISMATCH), and no
    file or folder under the dataset folder that the list does not name (EXTRA; SHA256SUMS itself aside,
    hidden files such as .DS_Store included). Exit 1 on any; exit 2 on a missing, empty or malformed list."""
    import os
    import re

    cfg = _cfg(args)
    folder = cfg.data_root() / args.dataset
    sums = folder / "SHA256SUMS"
    if not sums.is_file():
        print(f"{sums}: no checksum file", file=sys.stderr)
        return 2
    entry = re.compile(r"^([0-9a-fA-F]{64}) [ *](.+)$")   # sha256sum's text and binary formats
    listed: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for n, line in enumerate(sums.read_text(errors="replace").splitlines(), 1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        m = entry.match(line)
        name = m.group(2)[2:] if m and m.group(2).startswith("./") else (m.group(2) if m else "")
        parts = Path(name).parts
        if not m or not name or Path(name).is_absolute() or ".." in parts:
            print(f"{sums}: line {n} is not '<64 hex digits>  <relative path>': {line[:80]!r}", file=sys.stderr)
            return 2
        key = Path(name).as_posix()
        if key in listed:
            print(f"{sums}: line {n} lists {key} again (first on line {first_line[key]})", file=sys.stderr)
            return 2
        listed[key], first_line[key] = m.group(1).lower(), n
    if not listed:
        print(f"{sums}: lists no files (an empty checksum list verifies nothing)", file=sys.stderr)
        return 2
    from tqdm import tqdm

    missing = mismatched = 0
    for name, digest in tqdm(listed.items(), desc=f"verify {args.dataset}", mininterval=2,
                             disable=True if args.quiet else None):
        p = folder / name
        if not p.is_file():
            print(f"MISSING {p}", file=sys.stderr)
            missing += 1
            continue
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        if h.hexdigest() != digest:
            print(f"MISMATCH {p}", file=sys.stderr)
            mismatched += 1
    listed_dirs = {Path(k).parents[i].as_posix() for k in listed for i in range(len(Path(k).parents) - 1)}
    extra = 0
    for d, dirs, files in os.walk(folder):
        rel_d = Path(d).relative_to(folder)
        for sub in sorted(dirs):
            key = (rel_d / sub).as_posix()
            if key not in listed_dirs:      # a folder the list does not reach: one line for it
                n_files = sum(len(fs) for _, _, fs in os.walk(Path(d) / sub))
                print(f"EXTRA {Path(d) / sub}/ (a folder with {n_files} files, none listed)", file=sys.stderr)
                extra += 1
        dirs[:] = sorted(x for x in dirs if (rel_d / x).as_posix() in listed_dirs)
        for f in sorted(files):
            key = (rel_d / f).as_posix()
            if key not in listed and key != "SHA256SUMS":
                print(f"EXTRA {Path(d) / f}", file=sys.stderr)
                extra += 1
    ok = len(listed) - missing - mismatched
    print(f"{args.dataset}: {ok} of {len(listed)} files match SHA256SUMS; {missing} missing, "
          f"{mismatched} mismatched, {extra} extra")
    return 1 if missing or mismatched or extra else 0


def cmd_data_cache(args) -> int:
    from chromo.data.loader import prepare

    p = prepare(_cfg(args), args.dataset)
    print(json.dumps({k: v for k, v in p.meta.items() if k != "clipped_to_fit"} |
                     {"clipped_to_fit": len(p.meta["clipped_to_fit"])}, indent=2))
    return 0


def cmd_train(args) -> int:
    """One process, or one of several under torchrun (chromo.distributed): rank 0 prints the run."""
    from chromo import distributed
    from chromo.train import train

    try:
        run = train(_cfg(args), args.dataset, args.model)
        if distributed.world().main:
            print(run)
    finally:
        distributed.shutdown()
    return 0


def cmd_features(args) -> int:
    from chromo.inference import extract_features

    for p in extract_features(Path(args.run), args.split, size_prior=args.size_prior):
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


def cmd_run_notebook(args) -> int:
    """A checked rerun: parameters checked against the notebook's `parameters` cell before papermill
    starts; the output and any records go to a folder of their own (out/reruns/), never into book/."""
    from chromo.rerun import RerunError, run_notebook

    try:
        run_notebook(args.name, [tuple(p) for p in args.param or []], args.out, args.force)
    except RerunError as e:
        print(f"chromo run-notebook: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # papermill's execution error: the cell's error, not a traceback of papermill
        if type(e).__name__ != "PapermillExecutionError":
            raise
        print(f"chromo run-notebook: the notebook failed: {e.ename}: {e.evalue}", file=sys.stderr)
        return 1
    return 0


def cmd_runs_move(args) -> int:
    """Move a run (or a folder of runs) and point the runs that start from it at the new place; warn about
    the package's own source files that still name the old path (experiment variants name their sources)."""
    from chromo.io import project_root
    from chromo.run import lexical_path, move_runs

    written, notes = move_runs(args.src, args.dst, args.root or project_root() / "runs")
    print(f"moved {args.src} -> {args.dst}")
    for cfg_file, changes in written:
        for dataset, (old, new) in changes.items():
            print(f"  {cfg_file}: init_from.{dataset} {old} -> {new}")
    print(f"{len(written)} run{'s' if len(written) != 1 else ''} pointed at the new place")
    for n in notes:
        print(f"note: {n}", file=sys.stderr)
    old = lexical_path(args.src)
    with contextlib.suppress(ValueError):
        old = old.relative_to(lexical_path(project_root()))     # the spelling the package's sources use
    for f in sorted((project_root() / "chromo").rglob("*.py")):
        if re.search(r"(?<![\w/.-])" + re.escape(str(old)) + r"(?![\w.-])", f.read_text()):   # the folder, no longer name
            print(f"note: {f.relative_to(project_root())} still names {old}; edit it to the new path", file=sys.stderr)
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
    p = data.add_parser("verify", help="check files against SHA256SUMS: MISSING, MISMATCH, EXTRA (unlisted files, hidden ones too) exit 1; an empty or malformed list exits 2")
    common(p)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_data_verify)
    p = data.add_parser("cache", help="build the packed canvas cache of a dataset")
    common(p)
    p.set_defaults(func=cmd_data_cache)

    p = sub.add_parser("train", help="train a model (resumes an interrupted run; reuses a finished one); data "
                       "parallel under torchrun: torchrun --nproc_per_node N -m chromo train ...")
    common(p)
    p.add_argument("--model", default="eresnet-u1c0")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("features", help="features, logits, labels, cells and chromosome areas of a split, to files in the run, "
                       "and the run's size_prior.json (the assignment's relative-size prior)")
    p.add_argument("--run", required=True)
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--size-prior", type=float, default=None, metavar="W",
                   help="weight of the assignment's relative-size prior (0: off; default: the weight the run has, "
                        "else its config's; the book's runs get their profile's `size_prior`)")
    p.set_defaults(func=cmd_features)

    p = sub.add_parser("classify", help="karyotype one cell (or a folder of cells) from chromosome images")
    p.add_argument("dir")
    p.add_argument("--run", required=True, help="a run directory, e.g. runs/cpu/pki3/eresnet-u1c0")
    p.add_argument("--out", required=True)
    p.add_argument("--force", action="store_true", help="replace a non-empty OUT")
    p.add_argument("--skip-non-images", action="store_true", help="skip (and list) files that are not images")
    p.set_defaults(func=cmd_classify)

    runs = sub.add_parser("runs", help="manage run directories").add_subparsers(dest="sub", required=True)
    p = runs.add_parser("move", help="move a run (or a folder of runs) and rewrite the init_from paths of the runs "
                        "that start from it, all or nothing; refused while one of them is being trained")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--root", help="the folder searched for runs that start from SRC (default: the project's runs/, whatever a "
                   "profile's runs_dir says)")
    p.set_defaults(func=cmd_runs_move)

    p = sub.add_parser("book", help="execute the notebooks with papermill and build the Jupyter Book")
    p.add_argument("--profile", default="cpu")
    p.add_argument("--force", action="store_true", help="re-execute every notebook")
    p.add_argument("--no-build", action="store_true", help="execute only; do not build HTML")
    p.add_argument("--only", nargs="*", help="notebook name prefixes to consider (e.g. 05)")
    p.set_defaults(func=cmd_book)

    p = sub.add_parser("run-notebook", help="rerun one notebook with other parameters (checked first) into out/reruns/")
    p.add_argument("name", help="notebook name or prefix, e.g. 05 or 05_label_redistribution")
    p.add_argument("-p", "--param", nargs=2, action="append", metavar=("KEY", "VALUE"),
                   help="a parameter of the notebook's parameters cell (repeatable), e.g. -p beta 30")
    p.add_argument("--out", help="output notebook (default out/reruns/NAME-<params>.ipynb); records go beside it")
    p.add_argument("--force", action="store_true", help="replace an existing output notebook")
    p.set_defaults(func=cmd_run_notebook)
    return ap


def main(argv=None) -> int:
    from chromo.classify import InputError
    from chromo.config import ConfigError
    from chromo.data.manifest import DataError
    from chromo.distributed import DistributedError
    from chromo.run import CheckpointError

    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, DataError, CheckpointError, DistributedError, InputError, ValueError) as e:
        print(f"chromo: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # read-only folder, disk full, a folder where a file goes: the path, not a traceback
        where = f"{e.filename}: " if e.filename else ""
        print(f"chromo: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
