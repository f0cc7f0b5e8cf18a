"""Similarity flags: leads for a person to check, never a verdict and never a change of score.

Only what students wrote is compared: the **answer cells** of the submitted notebook (the cells nbgrader marks
``solution: true`` in the source, found by their ``grade_id``), never test cells, the setup or cells a student
added. Each answer cell is normalised (:func:`normalise`): comments, docstrings, blank lines and whitespace go,
every string literal becomes one token, and every identifier a student chose is renamed by order of first
appearance (``v0``, ``v1``, ...), while keywords, builtins and attribute names (``np.argsort``) are kept: renaming
variables and rewording comments leaves a copy unchanged. The normalised tokens are cut into overlapping
:data:`K`-token shingles, and the shingles of the **released** cell (the template the whole class started from:
the ``def`` line, the docstring, ``raise NotImplementedError()``) are removed, so starting from the same template
makes nobody similar.

Two students are flagged when the Jaccard similarity of their notebooks' shingle sets is at least
:data:`THRESHOLD` and they share at least :data:`MIN_SHARED` shingles (short answers that a contract nearly
dictates, ``return vocab_size * dim``, are too small to mean anything). ``matches-solution`` compares the same
way with the course's own answers: the solution cells of ``solutions/<id>/<id>.ipynb`` and the reference
implementation of each answered function (with the module's helpers it calls) in
``autograder/reference/numpy_ref.py`` and ``torch_ref.py``.

The false-positive rate of these settings is measured by ``tests/test_similarity.py`` on independently written
right answers (``tests/fixtures/similarity/``): the README states the measured figures.

Student notebooks are hostile input: they are parsed with a depth limit (:func:`autograder.grading.inputs.load_json`),
each answer cell is cut to :data:`MAX_CELL_CHARS`, every regular expression applied to student text is linear-time
(no pattern can match across lines and backtrack over them: ``^[ \\t]*+``, never ``^\\s*``), and
:func:`class_flags` fingerprints each student on their own: a notebook that still breaks something loses its own
flags, never the class's ``grades.csv``.
"""

from __future__ import annotations

import ast
import builtins
import io
import json
import keyword
import re
import tokenize
import zlib
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

from . import inputs

__all__ = [
    "class_flags",
    "MAX_CELL_CHARS",
    "K",
    "THRESHOLD",
    "MIN_SHARED",
    "normalise",
    "shingles",
    "answer_cells",
    "released_cells",
    "reference_sources",
    "Fingerprint",
    "fingerprint",
    "jaccard",
    "Pair",
    "compare_class",
    "flags_by_student",
    "SOLUTION_FLAG",
]

K = 7  # tokens per shingle
THRESHOLD = 0.75  # Jaccard similarity of two notebooks' shingle sets that raises a flag
MIN_SHARED = 25  # and at least this many shingles in common
SOLUTION_FLAG = "matches-solution"
MAX_CELL_CHARS = 100_000  # characters of one answer cell that are compared (a real answer is a few thousand)

_KEEP = set(keyword.kwlist) | set(keyword.softkwlist) | set(dir(builtins))
_SKIP = {tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING, tokenize.ENDMARKER}
# IPython magics and shell escapes: [ \t] cannot cross a line, so a run of blank lines costs linear time (``^\s*``
# matched newlines too and backtracked over every following blank line from every line start: quadratic)
_MAGIC = re.compile(r"^[ \t]*+[%!][^\n]*", re.MULTILINE)
_WORDS = re.compile(r"[A-Za-z_]\w*+|\d+\.?\d*|\S")
_NAME = re.compile(r"[A-Za-z_]\w*+")
_MARKER = re.compile(r"^[ \t]*+### (?:BEGIN|END) SOLUTION[ \t]*+$", re.MULTILINE)


def normalise(code: str) -> list[str]:
    """The tokens of ``code`` with comments, docstrings and layout removed, strings as ``"S"`` and the
    identifiers a student chooses renamed ``v0, v1, ...`` in order of first appearance. Code that does not
    tokenize (a syntax error) falls back to a plain split into words and symbols, renamed the same way."""
    code = _MAGIC.sub("", code)
    try:
        raw = [(t.type, t.string) for t in tokenize.generate_tokens(io.StringIO(code).readline)]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        raw = [(tokenize.NAME if _NAME.fullmatch(w) else tokenize.OP, w) for w in _WORDS.findall(code)]
    out: list[str] = []
    names: dict[str, str] = {}
    significant = [(kind, text) for kind, text in raw if kind not in _SKIP]
    for i, (kind, text) in enumerate(significant):
        if kind == tokenize.STRING:
            before = significant[i - 1][0] if i else tokenize.NEWLINE
            after = significant[i + 1][0] if i + 1 < len(significant) else tokenize.NEWLINE
            if before == tokenize.NEWLINE and after == tokenize.NEWLINE:
                continue  # a docstring or a bare string statement
            out.append("S")
        elif kind == tokenize.NAME:
            if text in _KEEP or (out and out[-1] == "."):
                out.append(text)
            else:
                out.append(names.setdefault(text, f"v{len(names)}"))
        elif kind == tokenize.NEWLINE:
            if out and out[-1] != ";":
                out.append(";")
        elif kind in (
            getattr(tokenize, "FSTRING_START", -1),
            getattr(tokenize, "FSTRING_MIDDLE", -1),
            getattr(tokenize, "FSTRING_END", -1),
        ):
            if not out or out[-1] != "S":
                out.append("S")
        else:
            out.append(text)
    return out


def shingles(tokens: list[str], k: int = K) -> set[int]:
    """The set of ``k``-token windows of ``tokens`` (CRC32 of each; one shingle for fewer than ``k`` tokens)."""
    if not tokens:
        return set()
    if len(tokens) < k:
        return {zlib.crc32("\x1f".join(tokens).encode())}
    return {zlib.crc32("\x1f".join(tokens[i : i + k]).encode()) for i in range(len(tokens) - k + 1)}


def _cells(nb: dict) -> list[dict]:
    cells = nb.get("cells", []) if isinstance(nb, dict) else []
    return [c for c in cells if isinstance(c, dict)]


def _text(cell: dict) -> str:
    source = cell.get("source", "")
    if isinstance(source, str):
        return source
    return "".join(s for s in source if isinstance(s, str)) if isinstance(source, list) else ""


def _meta(cell: dict) -> dict:
    meta = cell.get("metadata", {})
    meta = meta.get("nbgrader", {}) if isinstance(meta, dict) else {}
    return meta if isinstance(meta, dict) else {}


def answer_ids(source: bytes) -> list[str]:
    """grade_ids of the source notebook's code answer cells (``solution: true``), in order."""
    nb = json.loads(source.decode("utf-8"))
    return [
        _meta(c)["grade_id"]
        for c in _cells(nb)
        if _meta(c).get("solution") and c.get("cell_type") == "code" and _meta(c).get("grade_id")
    ]


def answer_cells(notebook: bytes, ids: list[str]) -> dict[str, str]:
    """``{grade_id: source}`` of the answer cells ``ids`` in a submitted notebook (each cut to
    :data:`MAX_CELL_CHARS`); empty when unreadable (not UTF-8, not JSON, nested too deep)."""
    try:
        nb = inputs.load_json(notebook)
    except ValueError:
        return {}
    wanted = set(ids)
    found = {}
    for cell in _cells(nb):
        gid = _meta(cell).get("grade_id")
        if gid in wanted and gid not in found and cell.get("cell_type") == "code":
            found[gid] = _text(cell)[:MAX_CELL_CHARS]
    return found


def released_cells(source: bytes) -> dict[str, str]:
    """``{grade_id: the released cell}``: each answer cell as students receive it (nbgrader's ``ClearSolutions``,
    the preprocessor ``generate_assignment`` uses)."""
    import nbformat
    from nbgrader.preprocessors import ClearSolutions

    nb = nbformat.reads(source.decode("utf-8"), as_version=4)
    nb, _ = ClearSolutions().preprocess(nb, {})
    ids = set(answer_ids(source))
    return {
        c.metadata.nbgrader["grade_id"]: c.source
        for c in nb.cells
        if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") in ids
    }


def solution_cells(source: bytes) -> dict[str, str]:
    """``{grade_id: the solution cell}`` of the source notebook, solution markers removed."""
    cells = answer_cells(source, answer_ids(source))
    return {gid: _MARKER.sub("", text) for gid, text in cells.items()}


def _defined_functions(code: str) -> list[str]:
    try:
        tree = ast.parse(_MAGIC.sub("", code))
    except SyntaxError:
        return []
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]


def reference_sources(function_names: list[str], modules=("numpy_ref", "torch_ref")) -> dict[str, str]:
    """``{name: source}`` of the reference implementation of each name, with the same-module helpers it calls
    (one level), from ``autograder/reference/<module>.py``; names with no reference are left out."""
    folder = Path(__file__).resolve().parents[1] / "reference"
    found: dict[str, str] = {}
    for module in modules:
        path = folder / f"{module}.py"
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        defs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        for name in function_names:
            if name in found or name not in defs:
                continue
            node = defs[name]
            called = {c.func.id for c in ast.walk(node) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)}
            parts = [ast.get_source_segment(text, node) or ""]
            parts += [ast.get_source_segment(text, defs[h]) or "" for h in sorted(called) if h in defs and h != name]
            found[name] = "\n\n".join(parts)
    return found


@dataclass(frozen=True)
class Fingerprint:
    """A notebook's answer shingles with the released template's removed."""

    shingles: frozenset[int]

    def __len__(self) -> int:
        return len(self.shingles)


def fingerprint(cells: dict[str, str], template: dict[str, str]) -> Fingerprint:
    """Shingles of every answer cell, minus the shingles of the same cell's released version."""
    total: set[int] = set()
    for gid, text in cells.items():
        total |= shingles(normalise(text)) - shingles(normalise(template.get(gid, "")))
    return Fingerprint(frozenset(total))


def jaccard(a: Fingerprint, b: Fingerprint) -> tuple[float, int]:
    """``(Jaccard similarity, shared shingles)`` of two fingerprints (0 for two empty ones)."""
    shared = len(a.shingles & b.shingles)
    union = len(a.shingles | b.shingles)
    return (shared / union if union else 0.0), shared


def flagged(a: Fingerprint, b: Fingerprint) -> tuple[bool, float]:
    """``(flag?, Jaccard similarity)``; pairs whose sizes alone rule out the threshold are not intersected
    (Jaccard is at most the ratio of the smaller set to the larger), and report that bound instead."""
    small, large = sorted((len(a), len(b)))
    if small < MIN_SHARED or small < THRESHOLD * large:
        return False, (small / large if large else 0.0)
    similarity, shared = jaccard(a, b)
    return similarity >= THRESHOLD and shared >= MIN_SHARED, similarity


@dataclass(frozen=True)
class Pair:
    a: str
    b: str  # a classmate, or SOLUTION_FLAG
    similarity: float


def compare_class(
    fingerprints: dict[str, Fingerprint], solution: Fingerprint | None = None, reference: Fingerprint | None = None
) -> list[Pair]:
    """Every flagged pair of students, and every student flagged against the solution or the reference."""
    pairs = []
    for a, b in combinations(sorted(fingerprints), 2):
        hit, similarity = flagged(fingerprints[a], fingerprints[b])
        if hit:
            pairs.append(Pair(a, b, similarity))
    for student in sorted(fingerprints):
        best = 0.0
        for course in (solution, reference):
            if course is not None:
                hit, similarity = flagged(fingerprints[student], course)
                if hit:
                    best = max(best, similarity)
        if best:
            pairs.append(Pair(student, SOLUTION_FLAG, best))
    return pairs


def flags_by_student(pairs: list[Pair]) -> dict[str, list[str]]:
    """``{student: ["bob 93%", "matches-solution 97%"]}`` for the ``flags`` column."""
    flags: dict[str, list[str]] = {}
    for p in pairs:
        flags.setdefault(p.a, []).append(f"{p.b} {p.similarity:.0%}")
        if p.b != SOLUTION_FLAG:
            flags.setdefault(p.b, []).append(f"{p.a} {p.similarity:.0%}")
    return flags


def course_fingerprints(source: bytes) -> tuple[dict[str, str], Fingerprint, Fingerprint]:
    """``(released template, solution fingerprint, reference fingerprint)`` of an assignment's source notebook."""
    template = released_cells(source)
    solution_text = solution_cells(source)
    solution = fingerprint(solution_text, template)
    names = [name for text in solution_text.values() for name in _defined_functions(text)]
    reference = reference_sources(names)
    # the reference is compared as if it were one answer cell per function, with the template's def lines removed
    ref_cells = {f"ref:{name}": code for name, code in reference.items()}
    ref_template = {
        f"ref:{name}": "\n".join(t for t in template.values() if f"def {name}(" in t or f"class {name}" in t)
        for name in reference
    }
    return template, solution, fingerprint(ref_cells, ref_template)


def class_flags(source: bytes, answers: dict[str, bytes], warn=None) -> dict[str, list[str]]:
    """``{student: flags}`` for the class's notebooks ``answers`` (``{student: notebook bytes}``), as
    :func:`flags_by_student` gives them. Each student is fingerprinted on their own: one whose notebook breaks the
    fingerprint (whatever it raises) is left out of the comparison and named in one ``warn(line)``; a source whose
    answer cells are unreadable gives no flags and one ``warn`` line. Never raises for a student's notebook."""
    warn = warn or (lambda line: None)
    try:
        template, solution, reference = course_fingerprints(source)
        ids = answer_ids(source)
    except Exception as exc:  # flags are leads: a source they cannot read loses only the flags
        warn(f"no similarity flags: the source's answer cells are unreadable ({type(exc).__name__})")
        return {}
    prints: dict[str, Fingerprint] = {}
    failed: list[str] = []
    for student, data in sorted(answers.items()):
        try:
            prints[student] = fingerprint(answer_cells(data, ids), template)
        except Exception:  # RecursionError, MemoryError from a hostile notebook: that student's flags only
            failed.append(student)
    if failed:
        shown = ", ".join(failed[:5]) + (f" and {len(failed) - 5} more" if len(failed) > 5 else "")
        warn(f"no similarity flags for {shown}: their answer cells could not be compared")
    return flags_by_student(compare_class(prints, solution, reference))


def remembered_class_flags(
    source: bytes, answers: dict[str, bytes], stored: dict | None, warn=None
) -> tuple[dict[str, list[str]], dict]:
    """``(flags, record)``: :func:`class_flags`, reused from ``stored`` (the record an earlier run returned) when
    it was computed from the same inputs (the source, each student's notebook bytes, this module and the reference
    implementations it compares with), its warnings repeated; computed otherwise. The caller keeps ``record`` for
    the next run (the grader: in the output folder's private state). A malformed ``stored`` is computed anew."""
    import hashlib
    import json

    warn = warn or (lambda line: None)

    def digest(data: bytes | None) -> str | None:
        return None if data is None else hashlib.sha256(data).hexdigest()

    code = [Path(__file__)] + sorted((Path(__file__).resolve().parents[1] / "reference").glob("*.py"))
    key = digest(
        json.dumps(
            [
                digest(source),
                sorted([student, digest(data)] for student, data in answers.items()),
                [digest(path.read_bytes()) for path in code],
            ]
        ).encode()
    )
    try:
        if stored is not None and stored["key"] == key:
            flags = {str(k): [str(f) for f in v] for k, v in stored["flags"].items()}
            for line in stored["warnings"]:
                warn(str(line))
            return flags, stored
    except (KeyError, TypeError, AttributeError):
        pass
    warnings: list[str] = []

    def keep(line: str) -> None:
        warnings.append(line)
        warn(line)

    flags = class_flags(source, answers, warn=keep)
    return flags, {"key": key, "flags": flags, "warnings": warnings}
