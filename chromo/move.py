"""Moving runs (`chromo runs move`): a run, or a folder of runs, renamed and every run that starts from it
(init_from) pointed at the new place, all or nothing."""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import yaml

from chromo import DATASETS
from chromo import config as config_mod
from chromo.io import atomic_write_text
from chromo.run import CheckpointError, Run


def _runs_under(folder: Path) -> list[Path]:
    """Every run directory (config.yaml beside provenance.json) at or below `folder`, sorted."""
    return sorted(p.parent for p in folder.rglob(Run.CONFIG) if (p.parent / Run.PROVENANCE).exists())


def lexical_path(p) -> Path:
    """An absolute path with '..' folded but symbolic links kept, as a user or a config spells it."""
    return Path(os.path.abspath(Path(p).expanduser()))


def _moved(value, src: Path, dst: Path) -> str | None:
    """The init_from path `value` after src moved to dst, in its own style (relative to the project root
    when it was relative), or None when it names nothing inside src (a dataset name, another run). Matched
    as spelled first (a symlinked runs/ stays relative), then with links resolved."""
    if not isinstance(value, str) or value in DATASETS:
        return None
    top = lexical_path(config_mod.project_root())
    p = Path(value).expanduser()
    old = lexical_path(p if p.is_absolute() else top / p)
    if old == src or src in old.parents:
        new = dst / old.relative_to(src)
    elif old.resolve() == src.resolve() or src.resolve() in old.resolve().parents:
        new = dst.resolve() / old.resolve().relative_to(src.resolve())
    else:
        return None
    if not p.is_absolute():
        with contextlib.suppress(ValueError):
            return str(new.relative_to(top))
    return str(new)


def _plan_move(src: Path, dst: Path, root: Path, inside: list[Path]) -> tuple[list, list[str]]:
    """The runs (inside src, or under root) whose init_from names a run inside src: [(run, config text,
    values, {dataset: (old, new)}, finished before)], and notes on what is not rewritten."""
    plan, notes = [], []
    for run in sorted(set(inside) | set(_runs_under(root) if root.is_dir() else [])):
        try:
            text = (run / Run.CONFIG).read_text()
            values = yaml.safe_load(text)
            if not isinstance(values, dict):
                raise TypeError(f"holds {type(values).__name__}, not a mapping")
        except (OSError, UnicodeDecodeError, yaml.YAMLError, TypeError) as e:
            if run in inside:
                raise CheckpointError(f"{run / Run.CONFIG}: unreadable ({type(e).__name__}: {e}); nothing "
                                      "moved") from e
            notes.append(f"{run / Run.CONFIG}: unreadable, not checked for paths into {src}")
            continue
        training = values.get("training") or {}
        changes = {d: (v, new) for d, v in (training.get("init_from") or {}).items()
                   if (new := _moved(v, src, dst))}
        if _moved(training.get("init_weights"), src, dst):
            notes.append(f"{run / Run.CONFIG}: init_weights {training['init_weights']} lies inside {src}; "
                         "not rewritten (the path is part of the run's identity)")
        if changes:
            plan.append((run, text, values, changes, _finished(run)))
    return plan, notes


def move_runs(src, dst, root) -> tuple[list[tuple[Path, dict]], list[str]]:
    """Move a run directory, or a folder of runs, from `src` to `dst`, and point every run under `root`
    (and inside src) that starts from a run inside src at its new place: the `init_from` paths in its
    config.yaml are rewritten, each file atomically. A run's identity does not change: its digest takes the
    source's digest, not its path (Config.source_digest); each rewritten run that was finished before the
    move is checked to be finished after it. All or nothing: a failure after the rename puts every file and
    the folder back.

    Refused, with nothing changed, when src is missing, a symbolic link or holds no run, dst exists or lies
    inside src, a run inside src has an unreadable config.yaml, or a run inside src or starting from it is
    being trained (each such run's lock is held meanwhile). Not rewritten, and named in the notes: a run
    under root whose config.yaml cannot be read, and an `init_weights` file inside src (its path is part of
    the run's identity, so rewriting it would make a finished run another one). provenance.json keeps the
    source path as it was when the run was trained: it is a record.
    Returns ([(config.yaml written, {dataset: (old init_from, new)})], notes)."""
    src, dst, root = lexical_path(src), lexical_path(dst), lexical_path(root)
    if src.is_symlink():
        raise CheckpointError(f"{src}: is a symbolic link; move the folder it names ({src.resolve()})")
    if not src.is_dir():
        raise CheckpointError(f"{src}: no such folder; nothing moved")
    inside = _runs_under(src)
    if not inside:
        raise CheckpointError(f"{src}: holds no run directory (config.yaml with provenance.json); nothing "
                              "moved")
    if dst.exists() or dst.is_symlink():
        raise CheckpointError(f"{dst}: already exists; nothing moved (choose a new name)")
    if dst == src or src in dst.parents or src.resolve() in dst.resolve().parents:
        raise CheckpointError(f"{dst}: lies inside {src}; nothing moved")
    plan, notes = _plan_move(src, dst, root, inside)
    created = [p for p in reversed(dst.parents) if not p.exists()]
    with contextlib.ExitStack() as locks:
        for run in sorted(set(inside) | {p[0] for p in plan}):
            locks.enter_context(Run(run).lock())     # a run being trained stops the move here
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(src, dst)
        except OSError as e:
            for p in reversed(created):
                with contextlib.suppress(OSError):
                    p.rmdir()
            raise CheckpointError(f"{src} -> {dst}: cannot rename ({e.strerror}); nothing moved") from e
        written = []
        try:
            for run, text, values, changes, was_done in plan:
                run = dst / run.relative_to(src) if run in inside else run
                values["training"]["init_from"].update({d: new for d, (_, new) in changes.items()})
                config_mod.save_values(values, run / Run.CONFIG)
                written.append((run / Run.CONFIG, text, changes))
                if was_done and not _finished(run):
                    raise CheckpointError(f"{run}: no longer matches its done.json after the move")
        except Exception:
            for cfg_file, text, _ in written:               # all or nothing: put everything back
                atomic_write_text(cfg_file, text)
            os.rename(dst, src)
            for p in reversed(created):
                with contextlib.suppress(OSError):
                    p.rmdir()
            raise
    return [(f, changes) for f, _, changes in written], notes


def _finished(run: Path) -> bool:
    """A finished run whose done.json matches its settings (Run.is_done); False for an unreadable one."""
    try:
        cfg, dataset, model = Run(run).settings()
        return Run(run).is_done(cfg, dataset, model)
    except (CheckpointError, OSError, json.JSONDecodeError):
        return False
