"""Reference runs and checked reruns.

Only the main job (chromo.book.pipeline, which executes the notebooks with papermill for the book and for the
nbval reference notebooks in tests/regression) writes reference records into ``cfg.results()/records``,
the files ``metrics.json`` is merged from. It marks the kernels it starts with the environment variable
``CHROMO_REFERENCE_RUN=1`` (a papermill kernel inherits the environment of the process that starts it).
Any other execution of a notebook (``chromo run-notebook``, raw papermill, Jupyter, nbval's
``make regress``) is a rerun: it writes its records under ``out/reruns/<profile>/records/`` (or under
``$CHROMO_RERUN_DIR/<profile>/records/``) and reads the reference records plus its own.

``chromo run-notebook NAME -p KEY VALUE ...`` checks the parameters against the notebook's ``parameters``
cell (names, types, the known ranges) before papermill starts, then executes into ``out/reruns/``.
"""
from __future__ import annotations

import ast
import contextlib
import difflib
import os
import re
import sys
from pathlib import Path

from chromo import BASELINES, EXTENDED, PUBLIC_DATASETS
from chromo import config as config_mod
from chromo.config import project_root
from chromo.run import Run
from chromo.io import rel

REFERENCE_ENV = "CHROMO_REFERENCE_RUN"
RERUN_DIR_ENV = "CHROMO_RERUN_DIR"


class RerunError(ValueError):
    """Bad input to a checked rerun, with a one-line message (the CLI exits 2)."""


# --- where records go ---------------------------------------------------------------------------------

def is_reference_run() -> bool:
    """True only inside a kernel started by the main job (chromo.book.pipeline.execute)."""
    return os.environ.get(REFERENCE_ENV) == "1"


def rerun_root() -> Path:
    """$CHROMO_RERUN_DIR, else out/reruns under the project root."""
    env = os.environ.get(RERUN_DIR_ENV)
    return Path(env).expanduser().resolve() if env else project_root() / "out" / "reruns"


def rerun_records_dir(cfg) -> Path:
    return rerun_root() / cfg.profile / "records"


def records_dir(cfg) -> Path:
    """Where this execution writes its records: the reference folder for the main job, else the rerun's."""
    return cfg.results() / "records" if is_reference_run() else rerun_records_dir(cfg)


def record_dirs(cfg) -> list[Path]:
    """The folders this execution reads records from, later ones overriding earlier ones file by file:
    the reference records, then (in a rerun) the rerun's own."""
    dirs = [cfg.results() / "records"]
    if not is_reference_run():
        dirs.append(rerun_records_dir(cfg))
    return dirs


@contextlib.contextmanager
def reference_env():
    """Set CHROMO_REFERENCE_RUN=1 for the kernels started inside (the main job only)."""
    old = os.environ.get(REFERENCE_ENV)
    os.environ[REFERENCE_ENV] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(REFERENCE_ENV, None)
        else:
            os.environ[REFERENCE_ENV] = old


# --- the notebook and its parameters ------------------------------------------------------------------

def notebooks_dir() -> Path:
    return project_root() / "notebooks"


def find_notebook(name: str) -> Path:
    """A notebook by name or prefix: '05', '05_label_redistribution', '05_label_redistribution.ipynb'."""
    all_nbs = sorted(p.stem for p in notebooks_dir().glob("*.ipynb"))
    stem = Path(name).name
    stem = stem[:-len(".ipynb")] if stem.endswith(".ipynb") else stem
    if stem in all_nbs:
        return notebooks_dir() / f"{stem}.ipynb"
    hits = [n for n in all_nbs if n.startswith(stem)] if stem else []
    if len(hits) == 1:
        return notebooks_dir() / f"{hits[0]}.ipynb"
    if hits:
        raise RerunError(f"notebook {name!r} is ambiguous: {', '.join(hits)}")
    raise RerunError(f"no notebook {name!r} in notebooks/; known: {', '.join(all_nbs)}")


def notebook_parameters(path: Path) -> dict:
    """The assignments of the cell tagged `parameters` (literal values only), in order."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if not cells:
        raise RerunError(f"{path.name} has no cell tagged 'parameters'")
    params = {}
    for node in ast.parse(cells[0].source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                params[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                params[node.targets[0].id] = None
    return params


# known domains of the notebooks' parameters (name -> type for None defaults, and a check)
NONE_DEFAULT_TYPES = {"seed": int, "cell": str, "run_dir": str, "beta": int, "gamma": float, "distance": str}
PAPER_GAMMA = (1.0, 1.5)                 # the paper's range for gamma (Fig. 5)


def _to_int(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise RerunError(f"{name} must be an integer, not {raw!r}") from None


def _to_float(name: str, raw: str) -> float:
    try:
        v = float(raw)
    except ValueError:
        raise RerunError(f"{name} must be a number, not {raw!r}") from None
    if v != v or v in (float("inf"), float("-inf")):
        raise RerunError(f"{name} must be a finite number, not {raw!r}")
    return v


def convert(name: str, raw: str, default):
    """The command-line string as the type of the notebook's default (None: see NONE_DEFAULT_TYPES)."""
    if raw.strip().lower() in ("none", "null") and default is None:
        return None
    if isinstance(default, bool):
        if raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        raise RerunError(f"{name} must be true or false, not {raw!r}")
    if isinstance(default, int):
        return _to_int(name, raw)
    if isinstance(default, float):
        return _to_float(name, raw)
    if isinstance(default, list):
        try:
            v = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            v = None
        if isinstance(v, (int, float)):
            v = [v]
        if not isinstance(v, (list, tuple)) or not v or not all(isinstance(x, (int, float)) for x in v):
            raise RerunError(f"{name} must be a list of numbers such as '[1.0, 1.2]', not {raw!r}")
        return [float(x) for x in v]
    if default is None:
        t = NONE_DEFAULT_TYPES.get(name, str)
        return _to_int(name, raw) if t is int else _to_float(name, raw) if t is float else raw
    return raw


def check_value(name: str, value, warn=print) -> None:
    """The known ranges; RerunError on a value the notebook cannot use."""
    if value is None:
        return
    if name == "beta" and not 1 <= value <= 45:
        raise RerunError("beta must be between 1 and 45 (the LRd head size for a 46-chromosome cell), not "
                         f"{value}")
    if name == "gamma":
        if value <= 0:
            raise RerunError(f"gamma must be greater than 0, not {value}")
        if not PAPER_GAMMA[0] <= value <= PAPER_GAMMA[1]:
            warn(f"warning: gamma {value} is outside the paper's range {PAPER_GAMMA[0]}..{PAPER_GAMMA[1]}")
    if name == "gammas" and any(g <= 0 for g in value):
        raise RerunError(f"gammas must all be greater than 0, not {value}")
    if name == "distance" and value not in config_mod.DISTANCES:
        raise RerunError(f"distance must be one of {', '.join(config_mod.DISTANCES)}, not {value!r}")
    if name == "dataset" and value not in PUBLIC_DATASETS:
        raise RerunError(f"dataset must be one of {', '.join(PUBLIC_DATASETS)}, not {value!r}")
    m = EXTENDED.match(value) if name == "model" else None
    if name == "model" and value not in BASELINES and (not m or not int(m.group(2)) <= int(m.group(1)) <= 3):
        raise RerunError("model must be eresnet-uXcY (Y <= X <= 3), alexnet, vgg16 or resnet50, not "
                         f"{value!r}")
    if name == "seed" and value < 0:
        raise RerunError(f"seed must be 0 or more, not {value}")
    if name in ("max_rows", "epochs") and value < 1:
        raise RerunError(f"{name} must be at least 1, not {value}")


def resolve_params(nb_path: Path, given: list[tuple[str, str]], warn=print) -> tuple[dict, dict, object]:
    """(the given parameters typed and checked, all parameters in effect, the Config they load)."""
    defaults = notebook_parameters(nb_path)
    typed = {}
    for name, raw in given:
        if name not in defaults:
            close = difflib.get_close_matches(name, list(defaults), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise RerunError(f"unknown parameter {name!r} for {nb_path.stem}{hint} "
                             f"known parameters: {', '.join(defaults)}")
        if name in typed:
            raise RerunError(f"parameter {name!r} given twice")
        typed[name] = convert(name, raw, defaults[name])
        check_value(name, typed[name], warn)
    effective = {**defaults, **typed}
    conf = effective.get("config")
    try:
        cfg = config_mod.load(conf) if conf else None
    except config_mod.ConfigError as e:
        raise RerunError(f"config {conf!r}: {e}") from None
    if cfg is not None:
        _check_runs(nb_path.stem, effective, cfg)
    return typed, effective, cfg


def _check_runs(nb: str, params: dict, cfg) -> None:
    """The analysis chapters (03-09) read finished runs: name the missing one before papermill starts."""
    if not ("03" <= nb[:2] <= "09"):
        return
    datasets = [params["dataset"]] if "dataset" in params else list(cfg.training.models)
    for d in datasets:
        models = [params["model"]] if "model" in params else cfg.training.models.get(d, [])
        for model in models:
            run = cfg.run_dir(d, model)
            if not (Run(run).is_finished() or Run(run).has_features("test", "*")):
                raise RerunError(f"no finished run {rel(run)} for profile {cfg.profile} (train it with "
                                 f"`chromo train --config {params.get('config')} --dataset {d} --model "
                                 f"{model}` or run the main job)")


def _slug(name: str, value) -> str:
    if name == "config":
        value = Path(str(value)).stem
    return re.sub(r"[^A-Za-z0-9.+]+", "_", f"{name}_{value}").strip("_")


def default_output(nb_stem: str, typed: dict) -> Path:
    tail = "".join(f"-{_slug(k, v)}" for k, v in typed.items())
    return rerun_root() / f"{nb_stem}{tail}.ipynb"


def check_output(out: Path, cfg, force: bool) -> Path:
    """Refuse outputs inside book/, notebooks/, tests/regression or the reference results, and existing
    files unless force."""
    out = Path(out).expanduser()
    out = (out if out.is_absolute() else Path.cwd() / out).resolve()
    if out.suffix != ".ipynb":
        raise RerunError(f"--out must name a .ipynb file, not {rel(out)}")
    root = project_root()
    forbidden = [root / "book", root / "notebooks", root / "tests" / "regression"]
    if cfg is not None:
        forbidden.append(cfg.results())
    for f in forbidden:
        if out == f.resolve() or f.resolve() in out.parents:
            raise RerunError(f"--out {rel(out)} is inside {rel(f)}, which only the main job writes; "
                             "choose a folder such as out/reruns/")
    if out.exists() and not force:
        raise RerunError(f"{rel(out)} exists; pass --force to replace it or --out to choose another file")
    if out.is_dir():
        raise RerunError(f"{rel(out)} is a folder")
    return out


def run_notebook(name: str, given: list[tuple[str, str]], out: str | None = None, force: bool = False,
                 warn=None) -> Path:
    """Validate, then execute the notebook with papermill into its own file; returns the output path.
    Records it writes go to <output>.records/<profile>/records beside the output (one folder per output,
    so reruns with other parameters never mix), never to the reference results."""
    warn = warn or (lambda m: print(m, file=sys.stderr))
    nb_path = find_notebook(name)
    typed, effective, cfg = resolve_params(nb_path, given, warn)
    out_path = check_output(Path(out) if out else default_output(nb_path.stem, typed), cfg, force)
    import papermill as pm

    prof = cfg.profile if cfg is not None else "<profile>"
    own = out_path.with_name(f"{out_path.stem}.records")
    rec = own / prof / "records"
    print(f"[chromo run-notebook] executing {nb_path.stem} -> {rel(out_path)} {typed or '(defaults)'}\n"
          f"[chromo run-notebook] a rerun: records (if any) go to {rel(rec)}, "
          f"not to the reference {rel(cfg.results() / 'records') if cfg else 'results'}", flush=True)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.tmp.ipynb")
    env = {REFERENCE_ENV: os.environ.pop(REFERENCE_ENV, None), RERUN_DIR_ENV: os.environ.get(RERUN_DIR_ENV)}
    os.environ[RERUN_DIR_ENV] = str(own)
    try:
        pm.execute_notebook(str(nb_path), str(tmp), parameters=typed, cwd=str(project_root()),
                            kernel_name="python3", progress_bar=False, request_save_on_cell_execute=False)
        tmp.replace(out_path)
    except BaseException:
        if tmp.exists():
            failed = out_path.with_name(f"{out_path.stem}.failed.ipynb")
            tmp.replace(failed)
            print(f"[chromo run-notebook] failed; the partly executed notebook is {rel(failed)}",
                  file=sys.stderr)
        raise
    finally:
        for k, v in env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    print(f"[chromo run-notebook] wrote {rel(out_path)}")
    return out_path
