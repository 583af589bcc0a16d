"""Moving runs (chromo.move.move_runs, `chromo runs move`): the run and every run that starts from it by
path stay finished and their own; bad moves are refused with nothing changed."""
import json
from pathlib import Path

import pytest
import yaml

from chromo import config
from chromo import run as run_mod
from chromo.cli import main
from chromo.io import project_root
from chromo.move import _moved, move_runs
from chromo.run import CheckpointError, Run

MODEL = "eresnet-u1c0"
SMOKE = str(project_root() / "configs" / "smoke.yaml")    # by path: one test moves the project root


def _finished_run(path: Path, dataset: str, init_from=None, **kw) -> Path:
    """A run directory as training leaves it (config.yaml, provenance.json, best.pt, done.json)."""
    cfg = config.load(SMOKE, init_from=init_from, **kw)
    Run(path).start(cfg, {"dataset": dataset, "model": MODEL})
    (path / "best.pt").write_bytes(b"")
    (path / "done.json").write_text(json.dumps({"config_digest": cfg.run_digest(dataset, MODEL)}))
    return path


def _is_done(path: Path) -> bool:
    cfg, dataset, model = Run(path).settings()
    return Run(path).is_done(cfg, dataset, model)


def _init_from(run: Path) -> dict:
    """init_from as the run's config.yaml holds it (in its training section)."""
    return yaml.safe_load((run / "config.yaml").read_text())["training"]["init_from"]


def _configs(root: Path) -> dict:
    return {p: p.read_text() for p in sorted(root.rglob("config.yaml"))}


@pytest.fixture
def chain(tmp_path):
    """runs/exp/source: a pki3 run; runs/exp/child and runs/other/child: bioimlab runs started from it."""
    root = tmp_path / "runs"
    src = _finished_run(root / "exp" / "source" / "smoke" / "pki3" / MODEL, "pki3")
    kids = [_finished_run(root / where / "smoke" / "bioimlab" / MODEL, "bioimlab", {"bioimlab": str(src)})
            for where in ("exp/child", "other/child")]
    return root, src, kids


def test_move_points_the_runs_that_start_from_it_at_the_new_place(chain):
    root, src, kids = chain
    new = root / "exp" / "renamed" / "smoke" / "pki3" / MODEL
    digests = [Run(k).done()["config_digest"] for k in kids]
    before = [yaml.safe_load((k / "config.yaml").read_text()) for k in kids]
    written, notes = move_runs(root / "exp" / "source", root / "exp" / "renamed", root)
    assert not src.exists() and (new / "best.pt").exists() and notes == []
    assert sorted(p for p, _ in written) == sorted(k / "config.yaml" for k in kids)
    for k, d, b in zip(kids, digests, before):
        after = yaml.safe_load((k / "config.yaml").read_text())
        assert after == {**b, "training": {**b["training"], "init_from": {"bioimlab": str(new)}}}  # only that
        assert _is_done(k) and Run(k).done()["config_digest"] == d         # the same run, still finished
    assert _is_done(new)


def test_moving_a_folder_rewrites_the_runs_inside_it_too(chain):
    root, src, kids = chain
    move_runs(root / "exp", root / "archive" / "exp", root)
    inner = root / "archive" / "exp" / "child" / "smoke" / "bioimlab" / MODEL
    moved_src = root / "archive" / "exp" / "source" / "smoke" / "pki3" / MODEL
    for kid in (inner, kids[1]):
        assert _init_from(kid) == {"bioimlab": str(moved_src)}
    assert _is_done(inner) and _is_done(kids[1])


def test_a_run_inside_that_starts_from_one_outside_keeps_its_path(chain):
    root, src, kids = chain
    before = (kids[1] / "config.yaml").read_text()
    written, _ = move_runs(root / "other", root / "elsewhere", root)      # kids[1] moves, its source does not
    moved = root / "elsewhere" / "child" / "smoke" / "bioimlab" / MODEL
    assert written == [] and (moved / "config.yaml").read_text() == before and _is_done(moved)


def test_relative_paths_stay_relative_under_a_symlinked_runs_folder(tmp_path, monkeypatch):
    """init_from: runs/... (relative to the project root), with runs/ a symbolic link to a big disk."""
    monkeypatch.setattr(config, "project_root", lambda: tmp_path)
    (tmp_path / "disk").mkdir()
    (tmp_path / "runs").symlink_to(tmp_path / "disk")
    src = _finished_run(tmp_path / "runs" / "a" / "smoke" / "pki3" / MODEL, "pki3")
    rel = "runs/a/smoke/pki3/" + MODEL
    kid = _finished_run(tmp_path / "runs" / "k" / "smoke" / "bioimlab" / MODEL, "bioimlab", {"bioimlab": rel})
    assert _is_done(kid)
    move_runs(tmp_path / "runs" / "a", tmp_path / "runs" / "b", tmp_path / "runs")
    assert _init_from(kid) == {"bioimlab": "runs/b/smoke/pki3/" + MODEL}
    assert _is_done(kid) and not src.exists()


def test_a_run_that_names_a_dataset_or_another_path_is_left_as_it_is(chain, tmp_path):
    root, src, kids = chain
    by_name = _finished_run(root / "byname" / "smoke" / "bioimlab" / MODEL, "bioimlab", {"bioimlab": "pki3"})
    before = (by_name / "config.yaml").read_text()
    written, _ = move_runs(root / "exp" / "source", root / "exp" / "moved", root)
    assert (by_name / "config.yaml").read_text() == before
    assert by_name / "config.yaml" not in [p for p, _ in written]


def test_init_weights_and_unreadable_configs_are_named_not_rewritten(chain):
    """init_weights is part of a run's identity: rewriting it would make a finished run another one."""
    root, src, kids = chain
    w = _finished_run(root / "w" / "smoke" / "pki3" / MODEL, "pki3", init_weights=str(src / "best.pt"))
    bad = root / "bad" / "smoke" / "pki3" / MODEL
    bad.mkdir(parents=True)
    (bad / "config.yaml").write_text(": not yaml: [")
    (bad / "provenance.json").write_text("{}")
    before = (w / "config.yaml").read_text()
    written, notes = move_runs(root / "exp" / "source", root / "exp" / "moved", root)
    assert len(written) == 2 and (w / "config.yaml").read_text() == before and _is_done(w)
    assert any(str(w / "config.yaml") in n and "init_weights" in n for n in notes)
    assert any(str(bad / "config.yaml") in n and "unreadable" in n for n in notes)


def test_moved_keeps_the_style_of_the_path():
    top = project_root()
    src, dst = top / "runs" / "x", top / "runs" / "z"
    assert _moved("runs/x/cpu/pki3/m", src, dst) == "runs/z/cpu/pki3/m"          # relative stays relative
    assert _moved(str(src / "cpu"), src, dst) == str(dst / "cpu")                 # absolute stays absolute
    assert _moved("runs/x", src, dst) == "runs/z"
    assert _moved("runs/xy/cpu", src, dst) is None                                # a prefix is not a folder
    assert _moved("pki3", src, dst) is None and _moved(None, src, dst) is None


def test_bad_moves_are_refused_with_nothing_changed(chain, tmp_path):
    root, src, kids = chain
    before = _configs(root)
    (tmp_path / "empty").mkdir()
    (root / "taken").mkdir()
    (tmp_path / "link").symlink_to(root / "exp")
    cases = [(tmp_path / "missing", root / "a", "no such folder", tmp_path / "missing"),
             (tmp_path / "empty", root / "a", "holds no run directory", tmp_path / "empty"),
             (tmp_path / "link", root / "a", "symbolic link", tmp_path / "link"),
             (root / "exp", root / "taken", "already exists", root / "taken"),
             (root / "exp", root / "exp" / "inner", "lies inside", root / "exp" / "inner")]
    for a, b, why, named in cases:
        with pytest.raises(CheckpointError, match=why) as e:
            move_runs(a, b, root)
        assert str(named) in str(e.value)
    assert src.exists() and _configs(root) == before and not (root / "a").exists()


def test_a_run_being_trained_is_not_moved(chain):
    root, src, kids = chain
    before = _configs(root)
    for held in (src, kids[1]):                # the run moved, or one that starts from it
        with Run(held).lock():                 # another process training it holds this lock
            with pytest.raises(CheckpointError, match="being trained"):
                move_runs(root / "exp" / "source", root / "exp" / "moved", root)
        assert src.exists() and not (root / "exp" / "moved").exists() and _configs(root) == before


def test_a_failure_half_way_puts_everything_back(chain, monkeypatch):
    root, src, kids = chain
    before = _configs(root)
    calls = []
    real = run_mod.atomic_write_text

    def second_write_fails(path, text):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device", str(path))
        return real(path, text)

    monkeypatch.setattr(run_mod, "atomic_write_text", second_write_fails)
    monkeypatch.setattr(config, "atomic_write_text", second_write_fails)     # config.save_values writes here
    with pytest.raises(OSError, match="No space left"):
        move_runs(root / "exp" / "source", root / "new" / "place", root)
    assert src.exists() and not (root / "new").exists() and _configs(root) == before
    assert all(_is_done(k) for k in kids)


def test_cli_runs_move(chain, capsys):
    root, src, kids = chain
    assert main(["runs", "move", str(root / "exp" / "source"), str(root / "new"), "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "2 runs pointed at the new place" in out and "init_from.bioimlab" in out
    assert main(["runs", "move", str(root / "exp" / "source"), str(root / "x"), "--root", str(root)]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_a_run_moved_by_hand_breaks_the_runs_that_start_from_it(chain):
    """Why `runs move` exists: after a plain rename the child no longer matches its done.json."""
    root, src, kids = chain
    src.parent.parent.parent.rename(root / "exp" / "by-hand")
    assert not _is_done(kids[0])
    (root / "exp" / "by-hand").rename(root / "exp" / "source")
    assert _is_done(kids[0])
