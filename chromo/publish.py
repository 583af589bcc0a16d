"""An output folder written all at once: checked before anything is written, written into a temporary
folder beside OUT and renamed into place, so a failure leaves nothing and of two commands racing for one
OUT one fails. --force replaces a previous result but removes only the files the command writes (`own`)."""
from __future__ import annotations

import errno
import os
import secrets
import shutil
import sys
from contextlib import suppress
from pathlib import Path


class OutputError(ValueError):
    """An OUT that cannot take the result; the message names it and what to do."""


def some(paths, n: int = 5) -> str:
    """The first `n` paths, and how many more."""
    paths = [str(p) for p in paths]
    return ", ".join(paths[:n]) + (f" and {len(paths) - n} more" if len(paths) > n else "")


def _overlap(out: Path, other: Path) -> str | None:
    a, b = out.resolve(), Path(other).resolve()
    return "is" if a == b else "lies inside" if b in a.parents else "contains" if a in b.parents else None


def foreign_files(out: Path, own) -> list[Path]:
    """What in OUT the command did not write: anything but its files `own`, directly or in cell folders."""
    bad = []
    for p in sorted(out.iterdir()):
        if p.is_dir() and not p.is_symlink():
            bad += [q for q in sorted(p.iterdir()) if q.name not in own or q.is_symlink() or not q.is_file()]
        elif p.name not in own or p.is_symlink() or not p.is_file():
            bad.append(p)
    return bad


def check_out(out: Path, force: bool, keep: list[tuple[str, Path]], own) -> None:
    """Refuse an OUT that is a file, is/contains/lies inside a folder in `keep` (input, run), or holds
    anything but a previous result (without force: anything at all)."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: is a file, not a folder; choose another --out")
    for what, path in keep:
        if rel := _overlap(out, path):
            raise OutputError(f"{out}: {rel} the {what} {path}; choose an --out outside it")
    if not out.is_dir() or not any(out.iterdir()):
        return
    foreign = foreign_files(out, own)
    if foreign and force:
        raise OutputError(f"{some(foreign, 3)}: not written by this command; --force replaces only "
                         f"{', '.join(own)} (and cell folders of them) and will not remove it; "
                         "move it away or choose another --out")
    if not force:
        raise OutputError(f"{out}: exists and is not empty; choose another --out"
                         + ("" if foreign else " or pass --force to replace the previous result"))


def _new_dir(parent: Path, prefix: str) -> Path:
    """A new uniquely named folder with the usual permissions (umask applies; mkdtemp's would be 0700)."""
    while True:
        p = parent / f"{prefix}{secrets.token_hex(4)}"
        with suppress(FileExistsError):
            p.mkdir()
            return p


def _move_aside(out: Path) -> Path | None:
    """Move a previous result (non-empty OUT) to a hidden folder beside it; None when there is none."""
    if not out.is_dir() or not any(out.iterdir()):
        return None
    old = _new_dir(out.parent, f".{out.name}.old.")
    try:
        os.rename(out, old)             # onto the new, empty folder
    except OSError as e:
        old.rmdir()
        if isinstance(e, FileNotFoundError):    # gone meanwhile: nothing to replace
            return None
        raise
    return old


def _remove_own(old: Path, own) -> None:
    """Remove a previous result moved aside: this command's files by name, then the emptied folders.
    Anything else (put there while it was replaced) stays, and is reported."""
    for d in [*(p for p in old.iterdir() if p.is_dir() and not p.is_symlink()), old]:
        for name in own:
            if (d / name).is_file() and not (d / name).is_symlink():
                with suppress(OSError):
                    (d / name).unlink()
        with suppress(OSError):
            d.rmdir()
    if old.exists():
        print(f"chromo: note: {old} keeps files that were added to the old output while it was replaced",
              file=sys.stderr)


def _publish(tmp: Path, out: Path, force: bool, own) -> None:
    """Rename the finished folder to OUT. rename(2) onto a non-empty folder fails, so the check that OUT is
    free and the write are one step: of two runs racing for OUT, one fails. With force, a previous result
    is moved aside first and, once the new one is in place, removed."""
    old = _move_aside(out) if force else None
    try:
        os.rename(tmp, out)
    except OSError as e:
        if old is not None:
            with suppress(OSError):
                os.rename(old, out)
        if e.errno in (errno.ENOTEMPTY, errno.EEXIST):
            raise OutputError(f"{out}: another run wrote it meanwhile; nothing was written. Choose another "
                              "--out or pass --force") from e
        raise
    if old is not None:
        _remove_own(old, own)


def write_all(out: Path, write, own, force: bool = False) -> None:
    """`write(folder)` into one temporary folder beside OUT, then rename it into place: all or nothing. An
    OSError (read-only folder, disk full) is an OutputError naming OUT; the temporary folder and any parent
    folders made for OUT are removed."""
    out = Path(out)
    made = [p for p in (out.parent, *out.parent.parents) if not p.exists()]     # deepest first
    tmp = None
    try:
        for p in reversed(made):
            p.mkdir(exist_ok=True)
        tmp = _new_dir(out.parent, f".{out.name}.")
        write(tmp)
        _publish(tmp, out, force, own)
    except BaseException as e:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        for p in made:
            with suppress(OSError):
                p.rmdir()
        if isinstance(e, OSError):
            raise OutputError(f"{out}: cannot write ({e.strerror or e}); check that its folder is writable "
                              "and has free space. Nothing was written") from e
        raise
