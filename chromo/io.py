"""Atomic writes (temporary file in the same folder, then rename) and run provenance."""
from __future__ import annotations

import errno
import json
import os
import platform
import re
import subprocess
import tempfile
from pathlib import Path


TMP_SUFFIX = ".tmp"
_TMP_NAME = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp$")   # tempfile.mkstemp's 8 random characters


def atomic_write(path: Path, write) -> Path:
    """Write through a temporary file `.<name>.XXXXXXXX.tmp` in the same folder, then rename. An OSError
    (read-only folder, disk full, a folder in the way) names the target path, never the temporary file,
    and leaves neither the temporary file nor a partial target behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder; give a file name", str(path))
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are meant to be read by others
        os.replace(tmp, path)
    except OSError as e:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        raise OSError(e.errno, e.strerror or str(e), str(path)) from e
    except BaseException:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        raise
    return path


def stale_temporaries(folder, older_than_s: float = 0.0, targets=None) -> list[Path]:
    """Temporary files of interrupted atomic writes in `folder` (not below it): names
    `.<target>.XXXXXXXX.tmp`, last modified more than older_than_s seconds ago, for any target or only those
    named in `targets`."""
    import time

    folder, now, out = Path(folder), time.time(), []
    if not folder.is_dir():
        return out
    for p in sorted(folder.iterdir()):
        m = _TMP_NAME.match(p.name)
        if not m or not p.is_file() or p.is_symlink():
            continue
        if targets is not None and m.group("target") not in targets:
            continue
        try:
            if now - p.stat().st_mtime >= older_than_s:
                out.append(p)
        except FileNotFoundError:
            continue
    return out


def atomic_write_bytes(path, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def atomic_write_json(path, obj) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=jsonable) + "\n")


def atomic_torch_save(path, obj) -> Path:
    import torch

    return atomic_write(path, lambda f: torch.save(obj, f))


def atomic_savez(path, **arrays) -> Path:
    import numpy as np

    return atomic_write(path, lambda f: np.savez(f, **arrays))


def jsonable(o):
    import numpy as np

    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def project_root() -> Path:
    """The checkout that holds this package (editable install), else the working directory."""
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").exists() and (here / "configs").is_dir():
        return here
    return Path.cwd()


def rel(path) -> str:
    """A path relative to the project root when inside it (no user-specific prefixes in outputs)."""
    p = Path(path).resolve()
    try:
        return str(p.relative_to(project_root()))
    except ValueError:
        return str(p)


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=project_root(),
                             capture_output=True, text=True, timeout=10)
        commit = out.stdout.strip() or "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "chromo", "configs"],
                               cwd=project_root(), capture_output=True, text=True, timeout=10).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def hardware() -> str:
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA), {os.cpu_count()} CPU cores"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU only: {os.cpu_count()} cores, {cpu}"


def versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("chromo", "torch", "torchvision", "numpy", "pandas", "scipy", "scikit-learn", "pillow"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def provenance() -> dict:
    return {"git_commit": git_commit(), "hardware": hardware(), "versions": versions()}
