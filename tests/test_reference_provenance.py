"""The committed reference run was executed on the code that is checked out.

Every colophon of the rendered book (book/notebooks/*.ipynb) and book/results/<profile>/metrics.json name
the git commit they ran on. A reader trusts that commit's chromo/, notebooks/ and configs/ to be what this
checkout holds; the test fails when they differ (the reference run must then be re-executed: `make book`).
"""
from __future__ import annotations

import json
import re
import subprocess

import pytest

from chromo.config import project_root

ROOT = project_root()
CODE = ["chromo", "notebooks", "configs"]


def _git(*args) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)


def _commits() -> dict[str, str]:
    """{source: commit} for every colophon and every metrics.json of the committed book."""
    out = {}
    for nb in sorted((ROOT / "book" / "notebooks").glob("*.ipynb")):
        text = nb.read_text()
        found = set(re.findall(r"git commit: ([0-9a-f]+(?:\+dirty)?|unknown)", text))
        assert len(found) == 1, f"{nb.name}: expected one colophon commit, found {sorted(found) or 'none'}"
        out[nb.name] = found.pop()
    committed = set(_git("ls-files", "book/results").stdout.split())  # an ignored smoke build is not the book
    for m in sorted((ROOT / "book" / "results").glob("*/metrics.json")):
        if str(m.relative_to(ROOT)) in committed:
            out[str(m.relative_to(ROOT))] = json.loads(m.read_text())["git_commit"]
    return out


def test_reference_run_names_the_checked_out_code():
    if _git("rev-parse", "HEAD").returncode != 0:
        pytest.skip("not a git checkout: the commit cannot be compared")
    commits = _commits()
    assert commits, "the committed book holds no executed notebook"
    problems = []
    for source, commit in commits.items():
        if commit == "unknown" or commit.endswith("+dirty"):
            problems.append(f"{source}: executed on {commit} code (uncommitted changes), not on a commit")
            continue
        if _git("cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
            if _git("rev-parse", "--is-shallow-repository").stdout.strip() == "true":
                pytest.skip(f"shallow clone: commit {commit} is not in the history")
            problems.append(f"{source}: commit {commit} is not in this repository's history")
            continue
        diff = _git("diff", "--name-only", commit, "HEAD", "--", *CODE).stdout.split()
        diff += _git("diff", "--name-only", "HEAD", "--", *CODE).stdout.split()  # uncommitted edits too
        if diff:
            problems.append(f"{source}: ran on {commit}, whose code differs from this checkout in "
                            f"{', '.join(sorted(set(diff))[:5])}{' ...' if len(set(diff)) > 5 else ''}")
    assert not problems, ("re-execute the reference run (`make book`) on committed code:\n"
                          + "\n".join(problems))
