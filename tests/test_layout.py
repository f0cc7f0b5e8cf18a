"""The package's layout, enforced: what each folder may import (the table in ``CONTRIBUTING.md``), no import cycles
between modules, and no ``# noqa`` comments.

Imports are read from the source with :mod:`ast`, not by importing anything: ``import x``, ``from x import y``
(``y`` counts as the module ``x.y`` when that is a module of the package), relative imports, imports inside
functions (a lazy import is still a dependency: it only hides a cycle from the interpreter), and dynamic imports
named by a string constant (``importlib.import_module("autograder.release")``, the command table of
``autograder/__main__.py``). Imports under ``if TYPE_CHECKING:`` never run and are left out.

Rules marked ``TARGET`` are those of folders that other branches are rewriting while this test is written
(``autograder/grading/``, ``autograder/checks/`` and the new ``autograder/student/``): the rule states where the
rewrite lands. Where the tree does not meet it yet the test is a strict ``xfail``, which turns into a failure as
soon as the rewrite meets it, so that the marker is removed and the rule holds from then on.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "autograder"

#: unit (a folder or a module of the package) -> the other units it may import. A module belongs to the longest
#: unit that is a prefix of its name; a module may always import modules of its own unit and the root package
#: ``autograder`` (whose ``__init__`` imports nothing).
RULES: dict[str, frozenset[str]] = {
    "autograder": frozenset(),  # the root __init__: nothing (it is copied into the grading sandbox)
    # references: each independent of everything, and of each other (torch_ref cross-checks numpy_ref)
    "autograder.reference": frozenset(),
    "autograder.reference.numpy_ref": frozenset(),
    "autograder.reference.torch_ref": frozenset(),
    # model data and measurement: on the references only
    "autograder.models": frozenset(),
    "autograder.accelerators": frozenset(),
    "autograder.measure": frozenset({"autograder.reference"}),
    # the chapters' helpers: on top of everything but the grader
    "autograder.book": frozenset(
        {"autograder.measure", "autograder.models", "autograder.accelerators", "autograder.reference"}
    ),
    # the grader's side
    "autograder.student": frozenset(),  # TARGET (checks-split): runs in the sandbox, imports nothing else
    "autograder.checks": frozenset({"autograder.student", "autograder.reference"}),  # TARGET: the judges
    "autograder.grading": frozenset({"autograder.checks", "autograder.student"}),  # TARGET: the instructor command
    # the notebooks' setup cell (text generated from _config.yml), the release and twins commands
    "autograder.setup_cell": frozenset(),
    "autograder.release": frozenset({"autograder.checks", "autograder.student", "autograder.setup_cell"}),
    "autograder.twins": frozenset({"autograder.release", "autograder.setup_cell"}),
    "autograder.__main__": frozenset({"autograder.grading", "autograder.release", "autograder.twins"}),
}
#: The one import across the sandbox boundary, by name and on purpose: a student's own machine runs ``check()`` and
#: the test cells in *local mode*, which judge in the same process, so ``autograder.student.local`` loads
#: ``autograder.checks.core`` with ``importlib`` when (and only when) it is not grading. Inside the grading sandbox
#: that module is absent and grading mode never asks for it (``tests/test_student_boundary.py`` checks both). It is
#: the only edge left out of the layering rules and of the cycle search.
LOCAL_SELF_CHECK = ("autograder.student.local", "autograder.checks.core")
#: units being rewritten on other branches: their rules and cycles are targets (see the module docstring)
TARGET_UNITS = ("autograder.grading", "autograder.checks", "autograder.student")


# --------------------------------------------------------------------------------------------------------------
# the scanner
# --------------------------------------------------------------------------------------------------------------
def module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules(package: Path) -> dict[str, Path]:
    """Every module of the package: dotted name -> file (a package's name maps to its ``__init__.py``)."""
    return {module_name(p, package): p for p in sorted(package.rglob("*.py")) if "__pycache__" not in p.parts}


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the nodes inside ``if TYPE_CHECKING:`` blocks."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    return skipped


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package modules that module ``name`` (file ``path``) imports, statically or by a dotted string."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skipped = _type_checking_nodes(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    root = next(iter(modules)).split(".")[0] if modules else ""
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                found.add(submodule if submodule in modules else target)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in modules:
            found.add(node.value)  # importlib.import_module("autograder.x"), a command table's module names
    inside = {m for m in found if m == root or m.startswith(root + ".")}
    resolved = set()
    for m in inside:  # "import autograder.x.y" of a name that is not a module: its longest module prefix
        while m not in modules and "." in m:
            m = m.rpartition(".")[0]
        resolved.add(m)
    return resolved - {name}


def unit_of(module: str, rules: dict[str, frozenset[str]]) -> str | None:
    """The longest rule key that is ``module`` or a dotted prefix of it."""
    keys = [k for k in rules if module == k or module.startswith(k + ".")]
    return max(keys, key=len) if keys else None


@dataclass(frozen=True)
class Violation:
    module: str
    imported: str

    def __str__(self) -> str:
        return f"{self.module} imports {self.imported}"


def layering_violations(modules: dict[str, Path], rules: dict[str, frozenset[str]]) -> list[Violation]:
    """Imports that cross from one unit into another the rules do not allow (the root package is always allowed)."""
    root = next(iter(modules)).split(".")[0]
    out = []
    for name, path in modules.items():
        unit = unit_of(name, rules)
        for imported in sorted(imports_of(name, path, modules)):
            if (name, imported) == LOCAL_SELF_CHECK:
                continue
            target = unit_of(imported, rules)
            if imported == root or target == unit:
                continue
            allowed = rules[unit]
            if not any(target == a or (target or "").startswith(a + ".") for a in allowed):
                out.append(Violation(name, imported))
    return out


def import_cycles(modules: dict[str, Path]) -> list[list[str]]:
    """Strongly connected groups of more than one module in the import graph (Tarjan), each sorted."""
    graph = {
        name: sorted(i for i in imports_of(name, path, modules) if (name, i) != LOCAL_SELF_CHECK)
        for name, path in modules.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    return sorted(groups)


# --------------------------------------------------------------------------------------------------------------
# the rules hold for this package
# --------------------------------------------------------------------------------------------------------------
MODULES = package_modules(PACKAGE)


def _is_target(module: str) -> bool:
    return any(module == u or module.startswith(u + ".") for u in TARGET_UNITS)


def test_every_module_of_the_package_has_a_rule():
    assert not [m for m in MODULES if unit_of(m, RULES) is None], "add the new folder to RULES and CONTRIBUTING.md"


def test_imports_follow_the_layout():
    bad = [str(v) for v in layering_violations(MODULES, RULES) if not _is_target(v.module)]
    assert not bad, "imports against the layout (CONTRIBUTING.md):\n" + "\n".join(bad)


def _target_violations() -> list[str]:
    return [str(v) for v in layering_violations(MODULES, RULES) if _is_target(v.module)]


@pytest.mark.xfail(
    bool(_target_violations()),
    strict=True,
    reason=f"TARGET rules of {', '.join(TARGET_UNITS)}, folders being rewritten on other branches",
)
def test_imports_of_the_folders_being_rewritten_follow_their_target_rules():
    assert not _target_violations(), "\n".join(_target_violations())


def test_no_import_cycles_outside_the_folders_being_rewritten():
    cycles = [c for c in import_cycles(MODULES) if not all(_is_target(m) for m in c)]
    assert not cycles, f"import cycles: {cycles}"


@pytest.mark.xfail(
    bool(import_cycles(MODULES)),
    strict=True,
    reason="TARGET: the rewrites remove course <-> tasks <-> feedback and dask_executor <-> package_shipping in "
    "grading/ (issue 15), and checks.core <-> student.local",
)
def test_no_import_cycles_at_all():
    assert import_cycles(MODULES) == []


def test_contributing_lists_every_folder_and_module_with_a_rule():
    text = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    for unit in RULES:
        if unit.count(".") <= 1:  # folders and top-level modules; the reference's two modules are named in prose
            path = unit.replace(".", "/")
            if unit == "autograder":
                shown = "autograder/__init__.py"
            elif (ROOT / f"{path}.py").is_file():
                shown = f"{path}.py"
            else:  # a folder, or a TARGET folder not created yet
                shown = f"{path}/"
            assert f"`{shown}`" in text, f"CONTRIBUTING.md does not list {shown}"


# --------------------------------------------------------------------------------------------------------------
# no noqa comments: a rule that is wrong for this code is changed in pyproject.toml, with its reason
# --------------------------------------------------------------------------------------------------------------
NOQA = re.compile(r"#\s*noqa\b", re.IGNORECASE)


def _noqa_sites(paths, root: Path = ROOT) -> list[str]:
    return [
        f"{p.relative_to(root)}:{i}"
        for p in paths
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1)
        if NOQA.search(line)
    ]


def _python_files() -> list[Path]:
    folders = [PACKAGE, ROOT / "tests"]
    return sorted({*ROOT.glob("*.py"), *(p for f in folders for p in f.rglob("*.py") if "__pycache__" not in p.parts)})


def _in_target(path: Path) -> bool:
    return _is_target(module_name(path, PACKAGE)) if PACKAGE in path.parents else False


def test_no_noqa_comments():
    sites = _noqa_sites(p for p in _python_files() if not _in_target(p) and p != Path(__file__))
    assert not sites, f"fix the code or the rule in pyproject.toml instead of # noqa: {sites}"


@pytest.mark.xfail(
    bool(_noqa_sites(p for p in _python_files() if _in_target(p))),
    strict=True,
    reason="TARGET: the rewrites of grading/ and checks/ drop their # noqa comments",
)
def test_no_noqa_comments_in_the_folders_being_rewritten():
    assert not _noqa_sites(p for p in _python_files() if _in_target(p))


# --------------------------------------------------------------------------------------------------------------
# the scanner finds what it must (so that the tests above can fail)
# --------------------------------------------------------------------------------------------------------------
def _fake_package(tmp_path: Path, files: dict[str, str]) -> dict[str, Path]:
    for relative, source in {"pkg/__init__.py": "", **files}.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(source)
    return package_modules(tmp_path / "pkg")


def test_scanner_sees_every_kind_of_import(tmp_path):
    modules = _fake_package(
        tmp_path,
        {
            "pkg/low/__init__.py": "",
            "pkg/low/a.py": "",
            "pkg/low/b.py": "X = 1\n",
            "pkg/top/__init__.py": "",
            "pkg/top/c.py": "",
            "pkg/top/uses.py": "import pkg.low.a\nfrom pkg.low import b\nfrom ..low.b import X\nfrom . import c\n"
            "def f():\n    import pkg.low\n"
            "import importlib\nM = importlib.import_module('pkg.top.c')\n"
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg\n",
        },
    )
    found = imports_of("pkg.top.uses", modules["pkg.top.uses"], modules)
    assert found == {"pkg.low.a", "pkg.low.b", "pkg.top.c", "pkg.low"}


def test_scanner_reports_a_forbidden_import_and_a_cycle(tmp_path):
    modules = _fake_package(
        tmp_path,
        {
            "pkg/low/__init__.py": "",
            "pkg/low/a.py": "from pkg.top import b\n",
            "pkg/top/__init__.py": "",
            "pkg/top/b.py": "def f():\n    from pkg.low import a\n",
        },
    )
    rules = {"pkg": frozenset(), "pkg.low": frozenset(), "pkg.top": frozenset({"pkg.low"})}
    assert [str(v) for v in layering_violations(modules, rules)] == ["pkg.low.a imports pkg.top.b"]
    assert import_cycles(modules) == [["pkg.low.a", "pkg.top.b"]]
    assert not layering_violations(modules, {**rules, "pkg.low": frozenset({"pkg.top"})})


def test_noqa_is_found_in_any_spelling(tmp_path):
    (tmp_path / "x.py").write_text("import os  # noqa: F401\ny = 1  #NOQA\nz = 'no qa here'\n")
    assert _noqa_sites([tmp_path / "x.py"], root=tmp_path) == ["x.py:1", "x.py:2"]
