"""The package's shape: three parts whose arrows point one way (the method core imports nothing from the
book or the lab; the book nothing from the lab; the command line, on top, wires them), no import cycle, no
module over 400 lines and no function over 60."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "chromo"


def _modules() -> dict:
    """{dotted module name: its source path}."""
    out = {}
    for p in sorted(PACKAGE.rglob("*.py")):
        parts = p.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


def _imports(path: Path, names: set) -> set:
    """The package modules a source file imports (anywhere in it: imports inside functions count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("chromo"):
            found |= {f"{node.module}.{a.name}" for a in node.names} & names or {node.module} & names
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names} & names
    return found - {"chromo"}


def _graph() -> dict:
    mods = _modules()
    return {m: _imports(p, set(mods)) - {m} for m, p in mods.items()}


def _part(module: str) -> str:
    return next((part for part in ("book", "lab") if module.startswith(f"chromo.{part}")), "core")


def test_every_arrow_points_down():
    wrong = [(m, d) for m, deps in _graph().items() for d in deps if m != "chromo.cli"
             and (_part(m), _part(d)) in {("core", "book"), ("core", "lab"), ("book", "lab")}]
    assert not wrong, wrong


def test_no_import_cycle():
    graph, state, cycles = _graph(), {}, []

    def visit(m, path):
        state[m] = "open"
        for d in sorted(graph[m]):
            if state.get(d) == "open":
                cycles.append(path[path.index(d):] + [d])
            elif d not in state:
                visit(d, path + [d])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, cycles


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_and_functions_stay_small(path):
    text = path.read_text()
    assert len(text.splitlines()) <= 400, f"{path.name}: {len(text.splitlines())} lines"
    long = [(n.name, n.end_lineno - n.lineno + 1) for n in ast.walk(ast.parse(text))
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > 60]
    assert not long, long


def test_the_checker_sees_a_wrong_arrow(tmp_path):
    bad = tmp_path / "core.py"
    bad.write_text("from chromo.book import report\n")
    assert _imports(bad, {"chromo.book.report", "chromo.book"}) == {"chromo.book.report"}
