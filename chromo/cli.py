"""Command line: chromo data / train / features / classify / runs / book / run-notebook."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from chromo import DATASETS, PAPER_MODEL


def _cfg(args):
    from chromo import config

    # --data-dir (relative to the working directory) ranks above CHROMO_DATA, which ranks above the
    # config's data_dir (Config.data_root); it is also recorded as data_dir in a new run's config.yaml
    return config.load(args.config, cli_data_dir=getattr(args, "data_dir", None) or None)


def cmd_data_summary(args) -> int:
    from chromo.data.manifest import summary

    cfg = _cfg(args)
    out = summary(cfg, args.dataset, args.manifest_out, skip_unreadable=args.skip_unreadable)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    for k, v in out.items():
        if k not in ("formulas", "excluded", "skipped"):
            print(f"{k:>24}: {v}")
    print(f"{'excluded':>24}: {len(out['excluded'])}")
    for e in out["excluded"] + out["skipped"]:
        print(f"{'':>26}{e['path']}: {e['reason']}")
    return 0


def cmd_data_verify(args) -> int:
    from chromo.data.verify import verify

    return verify(_cfg(args).data_root() / args.dataset, args.dataset, quiet=args.quiet)


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

    reports = classify_folder(Path(args.dir), Path(args.run), Path(args.out), args.force,
                              args.skip_non_images)
    for r in reports:
        extra = f"  (true {r['true_formula']}, accuracy {r['accuracy']:.3f})" if "true_formula" in r else ""
        print(f"{r['cell']}: {r['formula']}{extra}  flags: {'; '.join(r['flags']) or 'none'}")
    print(f"wrote {args.out}")
    return 0


def cmd_run_notebook(args) -> int:
    """A checked rerun: parameters checked against the notebook's `parameters` cell before papermill
    starts; the output and any records go to a folder of their own (out/reruns/), never into book/."""
    from chromo.book.rerun import RerunError, run_notebook

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
    """Move a run (or a folder of runs) and point the runs that start from it at the new place."""
    from chromo.io import project_root
    from chromo.move import move_runs

    written, notes = move_runs(args.src, args.dst, args.root or project_root() / "runs")
    print(f"moved {args.src} -> {args.dst}")
    for cfg_file, changes in written:
        for dataset, (old, new) in changes.items():
            print(f"  {cfg_file}: init_from.{dataset} {old} -> {new}")
    print(f"{len(written)} run{'s' if len(written) != 1 else ''} pointed at the new place")
    for n in notes:
        print(f"note: {n}", file=sys.stderr)
    old = Path(args.src).as_posix().rstrip("/")
    for f in sorted((project_root() / "configs" / "experiments").glob("*.yaml")):   # experiments name sources
        if old in f.read_text():
            print(f"note: {f.relative_to(project_root())} names {old}; edit it to the new place",
                  file=sys.stderr)
    return 0


def cmd_book(args) -> int:
    from chromo.book.pipeline import run_pipeline

    return run_pipeline(args.profile, force=args.force, build=not args.no_build, only=args.only)


def _common(p, dataset: bool = True) -> None:
    p.add_argument("--config", default="configs/cpu.yaml", help="profile YAML or name (smoke, cpu, gpu)")
    p.add_argument("--data-dir",
                   help="the folder holding pki3/ and bioimlab/ (else CHROMO_DATA, ../shared/data)")
    if dataset:
        p.add_argument("--dataset", required=True, choices=DATASETS)


def _data_commands(sub) -> None:
    data = sub.add_parser("data", help="inspect, verify and cache the public data")
    data = data.add_subparsers(dest="sub", required=True)
    p = data.add_parser("summary", help="counts, quirks and exclusions of a dataset")
    _common(p)
    p.add_argument("--json", action="store_true")
    p.add_argument("--skip-unreadable", action="store_true",
                   help="skip and list unreadable files instead of failing")
    p.add_argument("--manifest-out", help="also write the manifest (one row per image) to this CSV file")
    p.set_defaults(func=cmd_data_summary)
    p = data.add_parser("verify", help="check files against SHA256SUMS: MISSING, MISMATCH, EXTRA (unlisted "
                                       "files, hidden ones too) exit 1; an empty or malformed list exits 2")
    _common(p)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_data_verify)
    p = data.add_parser("cache", help="build the packed canvas cache of a dataset")
    _common(p)
    p.set_defaults(func=cmd_data_cache)


def _run_commands(sub) -> None:
    p = sub.add_parser("train", help="train a model (resumes an interrupted run; reuses a finished one); "
                                     "data parallel under torchrun: torchrun --nproc_per_node N -m chromo "
                                     "train ...")
    _common(p)
    p.add_argument("--model", default=PAPER_MODEL)
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("features",
                       help="features, logits, labels, cells and chromosome areas of a split, to files "
                       "in the run, and the run's size_prior.json (the assignment's relative-size prior)")
    p.add_argument("--run", required=True)
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--size-prior", type=float, default=None, metavar="W",
                   help="weight of the assignment's relative-size prior (0: off; default: the weight the "
                        "run has, else its config's; the book's runs get their profile's `size_prior`)")
    p.set_defaults(func=cmd_features)
    p = sub.add_parser("classify", help="karyotype one cell (or a folder of cells) from chromosome images")
    p.add_argument("dir")
    p.add_argument("--run", required=True, help="a run directory, e.g. runs/cpu/pki3/eresnet-u1c0")
    p.add_argument("--out", required=True)
    p.add_argument("--force", action="store_true", help="replace a non-empty OUT")
    p.add_argument("--skip-non-images", action="store_true", help="skip (and list) files that are not images")
    p.set_defaults(func=cmd_classify)
    runs = sub.add_parser("runs", help="manage run directories").add_subparsers(dest="sub", required=True)
    p = runs.add_parser("move", help="move a run (or a folder of runs) and rewrite the init_from paths of "
                                     "the runs that start from it, all or nothing; refused while one of "
                                     "them is being trained")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--root", help="the folder searched for runs that start from SRC (default: the project's "
                   "runs/, whatever a profile's runs_dir says)")
    p.set_defaults(func=cmd_runs_move)


def _book_commands(sub) -> None:
    p = sub.add_parser("book", help="execute the notebooks with papermill and build the Jupyter Book")
    p.add_argument("--profile", default="cpu")
    p.add_argument("--force", action="store_true", help="re-execute every notebook")
    p.add_argument("--no-build", action="store_true", help="execute only; do not build HTML")
    p.add_argument("--only", nargs="*", help="notebook name prefixes to consider (e.g. 05)")
    p.set_defaults(func=cmd_book)
    p = sub.add_parser("run-notebook", help="rerun one notebook with other parameters (checked first) into "
                       "out/reruns/")
    p.add_argument("name", help="notebook name or prefix, e.g. 05 or 05_label_redistribution")
    p.add_argument("-p", "--param", nargs=2, action="append", metavar=("KEY", "VALUE"),
                   help="a parameter of the notebook's parameters cell (repeatable), e.g. -p beta 30")
    p.add_argument("--out", help="output notebook (default out/reruns/NAME-<params>.ipynb); records go "
                                 "beside it")
    p.add_argument("--force", action="store_true", help="replace an existing output notebook")
    p.set_defaults(func=cmd_run_notebook)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="chromo", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for add in (_data_commands, _run_commands, _book_commands):
        add(sub)
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
