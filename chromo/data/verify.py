"""A data set folder against its SHA256SUMS: every listed file present (else MISSING) with its checksum
(else MISMATCH), and nothing under the folder that the list does not name (EXTRA; SHA256SUMS itself aside,
hidden files such as .DS_Store included): the list defines the data set exactly."""
from __future__ import annotations

import hashlib
import os
import re
import sys
from pathlib import Path

ENTRY = re.compile(r"^([0-9a-fA-F]{64}) [ *](.+)$")   # sha256sum's text and binary formats


class ListError(ValueError):
    """A missing, empty or malformed SHA256SUMS, named with its line."""


def read_sums(sums: Path) -> dict[str, str]:
    """{relative path: sha256} of a SHA256SUMS file, each path once."""
    if not sums.is_file():
        raise ListError(f"{sums}: no checksum file")
    listed: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for n, line in enumerate(sums.read_text(errors="replace").splitlines(), 1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        m = ENTRY.match(line)
        name = m.group(2)[2:] if m and m.group(2).startswith("./") else (m.group(2) if m else "")
        if not m or not name or Path(name).is_absolute() or ".." in Path(name).parts:
            raise ListError(f"{sums}: line {n} is not '<64 hex digits>  <relative path>': {line[:80]!r}")
        key = Path(name).as_posix()
        if key in listed:
            raise ListError(f"{sums}: line {n} lists {key} again (first on line {first_line[key]})")
        listed[key], first_line[key] = m.group(1).lower(), n
    if not listed:
        raise ListError(f"{sums}: lists no files (an empty checksum list verifies nothing)")
    return listed


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def extra_entries(folder: Path, listed: dict) -> list[str]:
    """What lies under `folder` that the list does not name: a folder it never reaches is one entry."""
    listed_dirs = {Path(k).parents[i].as_posix() for k in listed for i in range(len(Path(k).parents) - 1)}
    extra = []
    for d, dirs, files in os.walk(folder):
        rel_d = Path(d).relative_to(folder)
        for sub in sorted(dirs):
            if (rel_d / sub).as_posix() not in listed_dirs:
                n_files = sum(len(fs) for _, _, fs in os.walk(Path(d) / sub))
                extra.append(f"{Path(d) / sub}/ (a folder with {n_files} files, none listed)")
        dirs[:] = sorted(x for x in dirs if (rel_d / x).as_posix() in listed_dirs)
        extra += [str(Path(d) / f) for f in sorted(files)
                  if (rel_d / f).as_posix() not in listed and (rel_d / f).as_posix() != "SHA256SUMS"]
    return extra


def verify(folder: Path, dataset: str, quiet: bool = False) -> int:
    """Print MISSING, MISMATCH and EXTRA lines on stderr and a summary line; the exit status: 0 when the
    folder is exactly its list, 1 on any difference, 2 on a missing, empty or malformed list."""
    from tqdm import tqdm

    try:
        listed = read_sums(folder / "SHA256SUMS")
    except ListError as e:
        print(e, file=sys.stderr)
        return 2
    missing = mismatched = 0
    for name, digest in tqdm(listed.items(), desc=f"verify {dataset}", mininterval=2,
                             disable=True if quiet else None):
        p = folder / name
        if not p.is_file():
            print(f"MISSING {p}", file=sys.stderr)
            missing += 1
        elif sha256(p) != digest:
            print(f"MISMATCH {p}", file=sys.stderr)
            mismatched += 1
    extra = extra_entries(folder, listed)
    for e in extra:
        print(f"EXTRA {e}", file=sys.stderr)
    print(f"{dataset}: {len(listed) - missing - mismatched} of {len(listed)} files match SHA256SUMS; "
          f"{missing} missing, {mismatched} mismatched, {len(extra)} extra")
    return 1 if missing or mismatched or extra else 0
