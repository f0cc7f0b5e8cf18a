"""The published site: strict build, buttons, search, internal links, no leaked solutions, and what a browser shows.

The book is built once per session (``built_site`` in ``conftest.py``). Screenshots and the DOM that headless
Chromium saw after running the pages' JavaScript go to ``_build/test-artifacts/site/``.

Math: MathJax 3 ships with the site (``sphinx-mathjax-offline``), so the browser check requires typeset math
(``mjx-container`` elements) on every page whose source has math, with no network; ``summary.json`` records counts.

Launch buttons: every Colab and Binder link opens a tracked ``.ipynb`` of this repository (a chapter's twin).
Accessibility: each page Chromium opens also runs axe-core's WCAG 2 A and AA rules (``AXE_VERSION`` from the npm
registry, installed under ``_build/node/``); 0 violations, results in ``axe.json``.
"""

from __future__ import annotations

import ast
import concurrent.futures
import fcntl
import html as html_lib
import inspect
import io
import json
import os
import re
import shutil
import subprocess
import tempfile
import textwrap
import tokenize
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow

ARTIFACTS = ROOT / "_build" / "test-artifacts" / "site"
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
MIN_SECRET_CHARS = 25  # shorter lines ("ids = np.asarray(ids)", "dim = grad_out.shape[-1]") are idiom, not a leak
# The graded functions of course-contract.md: their reference source is the assignments' answer key.
GRADED_NUMPY = (
    "xavier_uniform",
    "embedding_forward",
    "one_hot",
    "nearest_neighbors",
    "sinusoidal_positions",
    "add_positions",
    "apply_rope",
    "interleaved_to_half",
    "llama3_inv_freq",
    "embedding_parameters",
    "tensor_bytes",
    "training_bytes",
    "lookup_bytes",
    "embedding_backward",
    "sparse_embedding_backward",
    "softmax_cross_entropy",
    "numerical_gradient",
    "kv_cache_bytes",
    "chunked_cross_entropy",
    "lookup_cost",
    "rope_cost",
    "optimizer_step_bytes",
    "backward_elements",
)
GRADED_TORCH = ("TokenPositionEmbedding", "EmbeddingFunction")
MIN_REFERENCE_CHARS = 25  # shorter reference lines ("if dim % 2:", "return weight[ids]") are the math, not the key


# --------------------------------------------------------------------------------------------------------------
# the table of contents and the sources
# --------------------------------------------------------------------------------------------------------------
def toc_docs() -> list[str]:
    """Every document in ``_toc.yml`` (root, chapters, parts, sections), in order, as docnames without suffix."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    docs = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                docs.append(entry["file"])
            walk(entry.get("sections"))
            walk(entry.get("chapters"))

    walk(toc.get("chapters"))
    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    return [re.sub(r"\.(md|ipynb)$", "", d) for d in docs]


def source_of(doc: str) -> Path:
    for suffix in (".md", ".ipynb"):
        if (ROOT / f"{doc}{suffix}").exists():
            return ROOT / f"{doc}{suffix}"
    raise FileNotFoundError(f"{doc} is in _toc.yml but has no .md or .ipynb source")


def markdown_text(source: Path) -> str:
    """The prose of a page: markdown cells of a notebook, or a MyST file without its code cells."""
    if source.suffix == ".ipynb":
        nb = json.loads(source.read_text())
        return "\n".join(
            "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            for c in nb["cells"]
            if c["cell_type"] == "markdown"
        )
    return re.sub(r"```\{code-cell\}.*?```", "", source.read_text(), flags=re.S)


def is_notebook(source: Path) -> bool:
    return source.suffix == ".ipynb" or "kernelspec:" in source.read_text()[:2000]


def expected_figures(source: Path) -> int:
    """Figures the page's prose declares (``{glue:figure}``, ``{figure}`` directives)."""
    return len(re.findall(r"\{(?:glue:figure|figure)\}", markdown_text(source)))


def has_math(source: Path) -> bool:
    text = markdown_text(source)
    return bool(re.search(r"\$\$|(?<![\\$])\$[^$\n]+\$|\{math\}|\\begin\{", text))


# --------------------------------------------------------------------------------------------------------------
# HTML helpers
# --------------------------------------------------------------------------------------------------------------
class _Collector(HTMLParser):
    """Collects ids and the ``href``/``src`` of every element, and the ``img`` tags inside ``<article>``."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.refs: list[tuple[str, str]] = []
        self.article_imgs: list[dict] = []
        self.figures = 0
        self.figures_with_caption = 0
        self.math = 0
        self.mathjax_typeset = 0
        self._article = 0
        self._figure_open = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("id", "name"):
            if a.get(key):
                self.ids.add(a[key])
        for key in ("href", "src"):
            if a.get(key) is not None:
                self.refs.append((tag, a[key]))
        classes = (a.get("class") or "").split()
        if tag == "article":
            self._article += 1
        if tag == "img" and self._article:
            self.article_imgs.append(a)
        if tag == "figure" and self._article:
            self.figures += 1
            self._figure_open = True
        if tag == "figcaption" and self._figure_open:
            self.figures_with_caption += 1
            self._figure_open = False
        if "math" in classes:
            self.math += 1
        if tag == "mjx-container":
            self.mathjax_typeset += 1

    def handle_endtag(self, tag):
        if tag == "article" and self._article:
            self._article -= 1
        if tag == "figure":
            self._figure_open = False


def parse_html(text: str) -> _Collector:
    collector = _Collector()
    collector.feed(text)
    return collector


def broken_links(site: Path) -> list[str]:
    """Every relative ``href``/``src`` in ``site``'s HTML pages whose file or ``#anchor`` does not exist."""
    ids: dict[Path, set[str]] = {}

    def ids_of(page: Path) -> set[str]:
        if page not in ids:
            ids[page] = parse_html(page.read_text(errors="replace")).ids
        return ids[page]

    broken = []
    # _static/*.html are the themes' Jinja macro files, copied as assets, not pages
    for page in sorted(p for p in site.rglob("*.html") if "_static" not in p.relative_to(site).parts):
        for tag, ref in parse_html(page.read_text(errors="replace")).refs:
            ref = ref.strip()
            if not ref or ref.startswith("//") or re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", ref):
                continue  # external (http:, mailto:, data:, javascript:) or empty
            parts = urlsplit(ref)
            target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            where = f"{page.relative_to(site)}: <{tag}> {ref}"
            if not target.exists():
                broken.append(f"{where} (no file {target})")
            elif parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in ids_of(target):
                broken.append(f"{where} (no anchor #{parts.fragment} in {target.name})")
    return broken


# --------------------------------------------------------------------------------------------------------------
# solutions and hidden tests
# --------------------------------------------------------------------------------------------------------------
def _normalise(text: str) -> str:
    return " ".join(text.split())


def _cell_source(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _between(source: str, begin: str, end: str) -> list[str]:
    lines, inside = [], False
    for line in source.splitlines():
        if begin in line:
            inside = True
        elif end in line:
            inside = False
        elif inside:
            lines.append(line)
    return lines


def secret_lines(solutions: Path, exercises: Path) -> dict[str, str]:
    """Lines that only instructors may see, mapped to the notebook they come from: the body of every nbgrader
    solution (between the BEGIN/END SOLUTION markers, or the whole answer cell without markers) and every hidden
    test (between BEGIN/END HIDDEN TESTS). Lines that also appear in the student notebooks under ``exercises``
    (signatures, given code) are not secret; nor are lines shorter than ``MIN_SECRET_CHARS`` characters."""
    public = set()
    for nb_path in exercises.glob("*/*.ipynb"):
        for cell in json.loads(nb_path.read_text())["cells"]:
            public.update(_normalise(line) for line in _cell_source(cell).splitlines())
    secrets = {}
    for nb_path in sorted(solutions.glob("*/*.ipynb")):
        for cell in json.loads(nb_path.read_text())["cells"]:
            source = _cell_source(cell)
            meta = cell.get("metadata", {}).get("nbgrader", {})
            lines = []
            if meta.get("solution"):
                lines = (
                    _between(source, "BEGIN SOLUTION", "END SOLUTION")
                    if "BEGIN SOLUTION" in source
                    else source.splitlines()
                )
            if "BEGIN HIDDEN TESTS" in source:
                lines += _between(source, "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
            for line in lines:
                norm = _normalise(line)
                if len(norm) >= MIN_SECRET_CHARS and norm not in public:
                    secrets[norm] = str(nb_path.relative_to(solutions.parent))
    return secrets


def code_lines(source: str) -> list[str]:
    """The lines of Python ``source`` that are code: docstrings, comments, blank lines and ``def``/``class``
    headers (the signatures students are given) left out, trailing comments cut off, whitespace-normalised."""
    source = textwrap.dedent(source)
    skip: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            skip.update(range(node.lineno, node.body[0].lineno))  # the header, however many lines it spans
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                skip.update(range(first.lineno, first.end_lineno + 1))
    lines = source.splitlines()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            row, col = tok.start
            lines[row - 1] = lines[row - 1][:col]
    return [_normalise(line) for number, line in enumerate(lines, 1) if number not in skip and line.strip()]


def reference_secrets() -> dict[str, str]:
    """Distinctive code lines (at least ``MIN_REFERENCE_CHARS`` characters) of the graded reference functions and
    classes, mapped to where they come from. Each graded object contributes at least one line, or this fails."""
    from autograder.reference import numpy_ref, torch_ref

    secrets = {}
    for module, names in ((numpy_ref, GRADED_NUMPY), (torch_ref, GRADED_TORCH)):
        for name in names:
            lines = [
                line
                for line in code_lines(inspect.getsource(getattr(module, name)))
                if len(line) >= MIN_REFERENCE_CHARS
            ]
            assert lines, f"{module.__name__}.{name} has no line of {MIN_REFERENCE_CHARS}+ characters to look for"
            for line in lines:
                secrets[line] = ", ".join(filter(None, [secrets.get(line), f"{module.__name__}.{name}"]))
    return secrets


def published_text(path: Path) -> str | None:
    """What a reader of ``path`` can see, whitespace-normalised: HTML without tags (so syntax highlighting does
    not hide code), a notebook's sources and outputs, any other text file as it is; ``None`` for binary files."""
    raw = path.read_bytes()
    if b"\0" in raw[:4096]:
        return None
    text = raw.decode("utf-8", errors="replace")
    if path.suffix in (".html", ".htm", ".svg"):
        text = html_lib.unescape(re.sub(r"<[^>]+>", "", text))
    elif path.suffix == ".ipynb":
        try:
            nb = json.loads(text)
            parts = []
            for cell in nb.get("cells", []):
                parts.append(_cell_source(cell))
                for out in cell.get("outputs", []):
                    parts.append(json.dumps(out, ensure_ascii=False))
            text = "\n".join(parts)
        except ValueError:
            pass
    return _normalise(text)


def leaks(site: Path, secrets: dict[str, str]) -> list[str]:
    """Every published file in ``site`` that contains an nbgrader marker or a secret line."""
    found = []
    for path in sorted(p for p in site.rglob("*") if p.is_file()):
        text = published_text(path)
        if text is None:
            continue
        rel = path.relative_to(site)
        found += [f"{rel}: marker {m!r}" for m in MARKERS if m in text]
        found += [f"{rel}: line of {src}: {line!r}" for line, src in secrets.items() if line in text]
    return found


# --------------------------------------------------------------------------------------------------------------
# the build
# --------------------------------------------------------------------------------------------------------------
def test_strict_build_passes(built_site):
    problems = [
        line
        for line in built_site.log.splitlines()
        if re.search(r"WARNING|ERROR|Traceback", line) and "Kernel is running over TCP" not in line
    ]
    assert built_site.returncode == 0, (
        "jupyter-book build . -W -n --keep-going failed:\n"
        + "\n".join(problems[:40])
        + "\n...\n"
        + built_site.log[-3000:]
    )
    print(f"strict build: {built_site.seconds:.1f} s")


def test_every_toc_page_is_published_with_its_buttons(built_site):
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    repo = config["repository"]["url"].rstrip("/")
    org_repo = repo.split("github.com/")[1]
    branch = config["repository"]["branch"]
    missing = []
    for doc in toc_docs():
        page = built_site.html / f"{doc}.html"
        if not page.exists():
            missing.append(f"{doc}: no {page.relative_to(built_site.html)}")
            continue
        text = page.read_text()
        source = source_of(doc)
        rel = source.relative_to(ROOT).as_posix()
        wanted = {
            "repository button": f'href="{repo}"',
            "edit button": f"{repo}/edit/{branch}/{rel}",
            "issues button": f"{repo}/issues/new",
        }
        if is_notebook(source):
            launched = source.with_suffix(".ipynb").relative_to(ROOT).as_posix()  # a .md chapter's twin
            wanted |= {
                "Binder button": f"https://mybinder.org/v2/gh/{org_repo}/{branch}?urlpath=lab/tree/{launched}",
                "Colab button": f"https://colab.research.google.com/github/{org_repo}/blob/{branch}/{launched}",
                "notebook download": f'_sources/{doc}.ipynb"',
            }
            if not (built_site.html / "_sources" / f"{doc}.ipynb").exists():
                missing.append(f"{doc}: no downloadable _sources/{doc}.ipynb")
        missing += [f"{doc}: no {what} ({needle})" for what, needle in wanted.items() if needle not in text]
    assert not missing, "\n".join(missing)


LAUNCH_LINK = re.compile(
    r"^(?:https://colab\.research\.google\.com/github/(?P<c_repo>[^/]+/[^/]+)/blob/"
    r"(?P<c_branch>[^/]+)/(?P<c_path>[^?#]+)"
    r"|https://mybinder\.org/v2/gh/(?P<b_repo>[^/]+/[^/]+)/(?P<b_branch>[^?]+)"
    r"\?urlpath=(?:lab/tree|tree|notebooks)/(?P<b_path>[^&#]+))$"
)


def launch_links(site: Path) -> list[tuple[str, str]]:
    """``(page, href)`` of every link to Colab or Binder in the site's HTML pages."""
    links = []
    for page in sorted(p for p in site.rglob("*.html") if "_static" not in p.relative_to(site).parts):
        links += [
            (page.relative_to(site).as_posix(), ref)
            for tag, ref in parse_html(page.read_text()).refs
            if tag == "a" and re.match(r"https://(colab\.research\.google\.com|mybinder\.org)/", ref)
        ]
    return links


def test_every_launch_link_opens_a_tracked_notebook(built_site):
    """Each Colab or Binder link of the built site names this repository and branch (``_config.yml``) and a
    notebook (``.ipynb``) that git tracks and that nbformat reads: what Colab and Binder will fetch."""
    import nbformat

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    repo = config["repository"]["url"].rstrip("/").removeprefix("https://github.com/")
    tracked = set(
        subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.splitlines()
    )
    links = launch_links(built_site.html)
    notebook_pages = [doc for doc in toc_docs() if is_notebook(source_of(doc))]
    assert len(links) >= 2 * len(notebook_pages), f"{len(links)} launch links for {len(notebook_pages)} notebook pages"
    bad = []
    for page, href in links:
        match = LAUNCH_LINK.match(href)
        if not match:
            bad.append(f"{page}: unrecognised launch link {href}")
            continue
        kind = "c" if match.group("c_repo") else "b"
        link_repo, branch, path = (unquote(match.group(f"{kind}_{part}")) for part in ("repo", "branch", "path"))
        if (link_repo, branch) != (repo, config["repository"]["branch"]):
            bad.append(f"{page}: {href} is not {repo} at {config['repository']['branch']}")
        elif not path.endswith(".ipynb") or path not in tracked:
            bad.append(f"{page}: {href} opens {path}, which is not a tracked .ipynb")
        else:
            nbformat.read(ROOT / path, as_version=4)  # raises for a file that is not a notebook
    assert not bad, "\n".join(bad)


def test_launch_link_parser_rejects_sources_and_other_repositories():
    ok = "https://colab.research.google.com/github/o/r/blob/main/book/a.ipynb"
    assert LAUNCH_LINK.match(ok).group("c_path") == "book/a.ipynb"
    binder = "https://mybinder.org/v2/gh/o/r/main?urlpath=lab/tree/book/a.ipynb"
    assert LAUNCH_LINK.match(binder).group("b_path") == "book/a.ipynb"
    assert (
        LAUNCH_LINK.match("https://colab.research.google.com/github/o/r/blob/main/book/a.md")
        .group("c_path")
        .endswith(".md")
    )  # matched, then refused by the test above for not being a notebook
    assert LAUNCH_LINK.match("https://mybinder.org/v2/gh/o/r/main") is None


def test_search_index_covers_every_page(built_site):
    assert (built_site.html / "search.html").exists()
    index = (built_site.html / "searchindex.js").read_text()
    absent = [doc for doc in toc_docs() if f'"{doc}"' not in index]
    assert not absent, f"pages missing from the search index: {absent}"


def test_nothing_outside_the_toc_and_no_instructor_files_are_published(built_site):
    published = [p.relative_to(built_site.html).as_posix() for p in built_site.html.rglob("*") if p.is_file()]
    bad = [p for p in published if re.search(r"(^|/)(solutions|submitted|autograded|feedback|tests)/", p)]
    assert not bad, f"instructor files published: {bad[:10]}"
    pages = {p[:-5] for p in published if p.endswith(".html") and p.startswith(("book/", "exercises/"))}
    assert pages <= set(toc_docs()), f"pages outside _toc.yml: {sorted(pages - set(toc_docs()))}"


def test_exercise_pages_are_published_unexecuted(built_site):
    exercises = [doc for doc in toc_docs() if doc.startswith("exercises/")]
    if not exercises:
        pytest.skip("no exercise notebooks in _toc.yml yet")
    for doc in exercises:
        text = (built_site.html / f"{doc}.html").read_text()
        assert 'class="cell_output' not in text, f"{doc} was executed: its page shows cell outputs"
        assert "Traceback" not in text, f"{doc} was executed: its page shows a traceback"


# --------------------------------------------------------------------------------------------------------------
# links
# --------------------------------------------------------------------------------------------------------------
def test_internal_links_resolve(built_site):
    broken = broken_links(built_site.html)
    assert not broken, f"{len(broken)} broken internal links:\n" + "\n".join(broken[:50])


def test_link_checker_finds_missing_files_and_anchors(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "index.html").write_text(
        '<a href="sub/page.html#there">ok</a> <a href="sub/page.html#nowhere">x</a>'
        '<img src="missing.png" alt="m"> <a href="https://example.org/x">ext</a>'
        '<a href="#top">self</a><span id="top"></span>'
    )
    (tmp_path / "sub" / "page.html").write_text(
        '<h1 id="there">T</h1><a href="../index.html">back</a><a href="gone.html">gone</a>'
    )
    broken = broken_links(tmp_path)
    assert len(broken) == 3, broken
    assert any("#nowhere" in b for b in broken) and any("missing.png" in b for b in broken)
    assert any("gone.html" in b for b in broken)


# --------------------------------------------------------------------------------------------------------------
# solutions never published
# --------------------------------------------------------------------------------------------------------------
def test_no_solution_hidden_test_or_graded_reference_is_published(built_site):
    """Neither the nbgrader solutions and hidden tests nor the reference source of a graded function (the answer key
    of the assignments: the book may call the reference, never show its body) may appear in the published site."""
    solutions = secret_lines(ROOT / "solutions", ROOT / "exercises")
    references = reference_secrets()
    found = leaks(built_site.html, {**solutions, **references})
    assert not found, "instructor-only content in the built site:\n" + "\n".join(found[:30])
    print(
        f"checked {len(solutions)} solution/hidden-test lines and {len(references)} lines of graded reference "
        "functions against the site"
    )


def test_reference_lines_leave_out_docstrings_comments_and_signatures():
    source = '''
    def f(weight, ids):
        """Docstring line that is long enough to count if it were code."""
        checked = validate_the_ids(ids, weight.shape[0])  # a trailing comment
        # a comment line that is long enough to count if it were code
        return weight[checked]
    '''
    assert code_lines(source) == ["checked = validate_the_ids(ids, weight.shape[0])", "return weight[checked]"]
    secrets = reference_secrets()
    assert "ids = _check_ids(ids, weight.shape[0])" in secrets  # embedding_forward's check
    sources = {src.rsplit(".", 1)[1] for where in secrets.values() for src in where.split(", ")}
    assert sources == set(GRADED_NUMPY) | set(GRADED_TORCH)


def _notebook(cells) -> str:
    return json.dumps(
        {
            "cells": [
                {
                    "cell_type": "code",
                    "metadata": {"nbgrader": meta},
                    "source": src,
                    "outputs": [],
                    "execution_count": None,
                }
                for src, meta in cells
            ],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )


def test_leak_scanner_catches_a_planted_solution_even_when_highlighted(tmp_path, built_site):
    """Plant a fake solution and hidden test, publish pieces of them in copies of a built page, and check that the
    scanner reports exactly those copies (and not the given signature, which students see anyway)."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    answer = "    checked_ids = np.asarray(ids, dtype=np.int64)  # planted answer"
    hidden = "assert planted_lookup(np.eye(3), [2]).shape == (1, 3)  # planted hidden test"
    signature = "def planted_lookup(weight, ids, planted_option=None):"
    for folder, cells in {
        "solutions": [
            (
                f"{signature}\n    ### BEGIN SOLUTION\n{answer}\n    out = weight[checked_ids]\n    return out\n"
                "    ### END SOLUTION\n",
                {"solution": True, "grade": False, "grade_id": "a"},
            ),
            (
                f"assert True\n### BEGIN HIDDEN TESTS\n{hidden}\n### END HIDDEN TESTS\n",
                {"solution": False, "grade": True, "grade_id": "t", "points": 1},
            ),
        ],
        "exercises": [(f"{signature}\n    # YOUR CODE HERE\n    raise NotImplementedError()\n", {"solution": True})],
    }.items():
        (tmp_path / folder / "planted").mkdir(parents=True)
        (tmp_path / folder / "planted" / "planted.ipynb").write_text(_notebook(cells))
    secrets = secret_lines(tmp_path / "solutions", tmp_path / "exercises")
    assert _normalise(answer) in secrets and _normalise(hidden) in secrets
    assert _normalise(signature) not in secrets  # given to students in exercises/
    assert "return out" not in secrets  # too short to be evidence of a leak

    page = next(built_site.html.glob("book/*.html")).read_text()
    site = tmp_path / "site"
    site.mkdir()
    (site / "clean.html").write_text(page)
    (site / "highlighted.html").write_text(
        page.replace("</article>", highlight(answer, PythonLexer(), HtmlFormatter()) + "</article>")
    )
    (site / "hidden.txt").write_text(hidden.replace(" ", "  "))
    (site / "marker.html").write_text(page.replace("</article>", "<p># ### BEGIN HIDDEN TESTS</p></article>"))
    found = leaks(site, secrets)
    assert {f.split(":")[0] for f in found} == {"highlighted.html", "hidden.txt", "marker.html"}, found


def test_leak_scanner_catches_a_graded_reference_shown_with_literalinclude(tmp_path, built_site):
    """What ``{literalinclude} ... :pyobject: embedding_backward`` would publish: the reference body, highlighted."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    from autograder.reference import numpy_ref, torch_ref

    page = next(built_site.html.glob("book/*.html")).read_text()
    site = tmp_path / "site"
    site.mkdir()
    (site / "clean.html").write_text(page)
    for name, obj in {"backward": numpy_ref.embedding_backward, "function": torch_ref.EmbeddingFunction}.items():
        shown = highlight(inspect.getsource(obj), PythonLexer(), HtmlFormatter())
        (site / f"{name}.html").write_text(page.replace("</article>", shown + "</article>"))
    found = leaks(site, reference_secrets())
    assert {f.split(":")[0] for f in found} == {"backward.html", "function.html"}, found


# --------------------------------------------------------------------------------------------------------------
# what a browser shows
# --------------------------------------------------------------------------------------------------------------
AXE_VERSION = "4.14.1"  # axe-core, from the npm registry; installed by the test under _build/node/ (never committed)
AXE_TAGS = ("wcag2a", "wcag2aa")  # WCAG 2.0 levels A and AA


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def chromium() -> str:
    for name in (os.environ.get("CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    if in_ci():
        pytest.fail(
            "Chromium is required in CI for the browser check: `make test` installs Debian's chromium "
            "package when run as root; or set CHROMIUM=/path/to/chromium"
        )
    pytest.skip("Chromium not found (apt-get install chromium, or set CHROMIUM): browser check skipped")


def axe_script() -> Path | None:
    """``axe.min.js`` of axe-core :data:`AXE_VERSION`, installed with npm into ``_build/node/`` on first use; ``None``
    where npm is missing (the audit then skips, or fails in CI)."""
    prefix = ROOT / "_build" / "node" / f"axe-core-{AXE_VERSION}"
    script = prefix / "node_modules" / "axe-core" / "axe.min.js"
    npm = shutil.which("npm")
    if script.is_file() or npm is None:
        return script if script.is_file() else None
    prefix.parent.mkdir(parents=True, exist_ok=True)
    with open(prefix.parent / ".install.lock", "w") as lock:  # one npm install at a time (parallel test workers)
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not script.is_file():
            _npm_install(npm, prefix, script)
    return script


def _npm_install(npm: str, prefix: Path, script: Path) -> None:
    proc = subprocess.run(
        [
            npm,
            "install",
            "--prefix",
            str(prefix),
            "--no-save",
            "--no-package-lock",
            "--no-audit",
            "--no-fund",
            f"axe-core@{AXE_VERSION}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0 and script.is_file(), (
        f"npm install axe-core@{AXE_VERSION} failed:\n{proc.stderr[-2000:]}"
    )


# Runs axe once the page is done -- after the theme's load handler (which makes scrollable code blocks focusable; the
# deferred theme script registers it before DOMContentLoaded, so this one, registered on DOMContentLoaded, runs after
# it) and MathJax's typesetting -- and leaves the violations in the DOM as JSON. (A timer would not do: under
# Chromium's virtual time budget, axe started from a timer did not finish.)
AXE_RUNNER = """<script>
document.addEventListener("DOMContentLoaded", function () { window.addEventListener("load", audit); });
function audit() {
  function report(result) {
    var node = document.createElement("script");
    node.type = "application/json";
    node.id = "axe-results";
    node.textContent = JSON.stringify(result).replace(/</g, "\\\\u003c");
    document.body.appendChild(node);
  }
  var typeset = (window.MathJax && MathJax.startup && MathJax.startup.promise) || Promise.resolve();
  typeset.then(function () {
    return axe.run(document, {runOnly: {type: "tag", values: %s}, resultTypes: ["violations"]});
  }).then(function (r) {
    report({axe: axe.version, violations: r.violations.map(function (v) {
      return {id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(function (n) {
        return {target: n.target.join(" "), html: n.html.slice(0, 200)}; })}; })});
  }, function (error) { report({error: String(error)}); });
}
</script>"""


def with_axe(page: Path, script: Path, folder: Path) -> Path:
    """A copy of ``page`` in ``folder`` that loads axe-core and runs :data:`AXE_RUNNER`; a ``<base>`` element keeps
    every relative URL pointing where the original page's do, so the browser renders the same page."""
    text = page.read_text()
    head = re.search(r"<head[^>]*>", text)
    assert head, f"{page}: no <head>"
    base = f'<base href="{page.parent.as_uri()}/">'
    runner = f'<script src="{script.as_uri()}"></script>' + AXE_RUNNER % json.dumps(list(AXE_TAGS))
    text = text[: head.end()] + base + text[head.end() :]
    at = text.rindex("</body>")
    copy = folder / page.name
    copy.write_text(text[:at] + runner + text[at:])
    return copy


def render(browser: str, page: Path, screenshot: Path) -> str:
    """The DOM of ``page`` after its JavaScript ran in headless Chromium; saves a screenshot."""
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        proc = subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                f"--user-data-dir={profile}",
                "--window-size=1280,2000",
                "--hide-scrollbars",
                "--virtual-time-budget=15000",
                f"--screenshot={screenshot}",
                "--dump-dom",
                page.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=180,
        )
    assert proc.returncode == 0, f"chromium failed on {page}: {proc.stderr[-2000:]}"
    return proc.stdout


def axe_results(dom: str) -> dict | None:
    """What :data:`AXE_RUNNER` left in a rendered DOM, or ``None`` when axe did not finish."""
    found = re.search(r'<script type="application/json" id="axe-results">(.*?)</script>', dom, flags=re.S)
    return json.loads(found.group(1)) if found else None


@dataclass(frozen=True)
class Rendered:
    doc: str
    dom: str
    screenshot: Path
    axe: dict | None  # None: axe did not run (npm missing) or did not finish


@pytest.fixture(scope="module")
def rendered_pages(built_site) -> list[Rendered]:
    """Every page of the table of contents, opened once in headless Chromium (with axe-core injected where npm could
    install it); DOMs and screenshots go to ``ARTIFACTS``."""
    browser = chromium()
    script = axe_script()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def open_page(doc):
        name = doc.replace("/", "__")
        shot = ARTIFACTS / f"{name}.png"
        page = built_site.html / f"{doc}.html"
        with tempfile.TemporaryDirectory(prefix="axe-page-") as folder:
            dom = render(browser, with_axe(page, script, Path(folder)) if script else page, shot)
        (ARTIFACTS / f"{name}.dom.html").write_text(dom)
        return Rendered(doc, dom, shot, axe_results(dom) if script else None)

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(open_page, toc_docs()))


def test_pages_render_in_a_browser_with_figures_alt_text_and_math(rendered_pages):
    problems, summary = [], []
    for r in rendered_pages:
        doc, dom, shot = r.doc, r.dom, r.screenshot
        page = parse_html(dom)
        source = source_of(doc)
        if not shot.exists() or shot.stat().st_size < 10_000:
            problems.append(f"{doc}: no screenshot (or a blank one) at {shot}")
        if "<article" not in dom or "<h1" not in dom:
            problems.append(f"{doc}: no article with a title in the rendered page")
        no_alt = [img.get("src", "?") for img in page.article_imgs if not (img.get("alt") or "").strip()]
        problems += [f"{doc}: image without alt text: {src}" for src in no_alt]
        wanted = expected_figures(source)
        if page.figures < wanted:
            problems.append(f"{doc}: {page.figures} figures rendered, the source declares {wanted}")
        if page.figures_with_caption < page.figures:
            problems.append(f"{doc}: {page.figures - page.figures_with_caption} figures without a caption")
        if has_math(source) and not page.mathjax_typeset:
            problems.append(f"{doc}: the source has math but MathJax typeset none of it (is _static/mathjax there?)")
        if has_math(source) and not re.search(r"<script[^>]+src=\"[^\"]*mathjax[^\"]*\"", dom, flags=re.I):
            problems.append(f"{doc}: the page has math but loads no MathJax to typeset it")
        summary.append(
            {
                "page": doc,
                "images": len(page.article_imgs),
                "figures": page.figures,
                "math_elements": page.math,
                "mathjax_typeset": page.mathjax_typeset,
                "screenshot": str(shot.relative_to(ROOT)),
            }
        )
    (ARTIFACTS / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    assert not problems, "\n".join(problems)


def test_pages_pass_the_axe_wcag2_a_and_aa_audit(rendered_pages):
    """axe-core's WCAG 2 A and AA rules, run in Chromium on every page after its scripts and MathJax: 0 violations.
    The full results go to ``ARTIFACTS/axe.json``."""
    if all(r.axe is None for r in rendered_pages) and shutil.which("npm") is None:
        message = (
            f"npm not found: the accessibility audit (axe-core {AXE_VERSION} from the npm registry) needs "
            "Node.js and npm (apt-get install nodejs npm)"
        )
        if in_ci():
            pytest.fail(message + "; it is required in CI")
        pytest.skip(message)
    (ARTIFACTS / "axe.json").write_text(json.dumps({r.doc: r.axe for r in rendered_pages}, indent=1) + "\n")
    problems = []
    for r in rendered_pages:
        if r.axe is None:
            problems.append(f"{r.doc}: axe did not finish within the page's time budget")
        elif "error" in r.axe:
            problems.append(f"{r.doc}: axe failed: {r.axe['error']}")
        else:
            assert r.axe["axe"] == AXE_VERSION
            for v in r.axe["violations"]:
                where = "; ".join(f"{n['target']} {n['html']}" for n in v["nodes"][:3])
                problems.append(f"{r.doc}: {v['id']} ({v['impact']}, {len(v['nodes'])} elements): {v['help']}: {where}")
    assert not problems, f"{len(problems)} accessibility violations (WCAG 2 A/AA):\n" + "\n".join(problems)


def test_axe_audit_reports_planted_violations(tmp_path):
    """The audit pipeline (copy with ``<base>``, axe injected, results read back from the DOM) sees a missing alt
    text, an empty link and low contrast from a stylesheet loaded through the page's relative URL."""
    browser = chromium()
    script = axe_script()
    if script is None:
        if in_ci():
            pytest.fail("npm is required in CI for the accessibility audit")
        pytest.skip("npm not found: the accessibility audit (axe-core from the npm registry) is skipped")
    (tmp_path / "site" / "sub").mkdir(parents=True)
    (tmp_path / "site" / "style.css").write_text(".faint { color: #d0d0d0; background: #ffffff; }\n")
    page = tmp_path / "site" / "sub" / "page.html"
    page.write_text(
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Planted</title>'
        '<link rel="stylesheet" href="../style.css"></head><body><main><h1>Planted</h1>'
        '<img src="../none.png"><a href="#x"></a><p class="faint">faint text</p></main></body></html>'
    )
    (tmp_path / "copy").mkdir()
    dom = render(browser, with_axe(page, script, tmp_path / "copy"), tmp_path / "shot.png")
    result = axe_results(dom)
    assert result and result["axe"] == AXE_VERSION, result
    assert {v["id"] for v in result["violations"]} == {"image-alt", "link-name", "color-contrast"}, result


def test_the_leak_check_covers_every_graded_reference_function():
    """A graded function added to the references but not to GRADED_NUMPY would go unchecked for leaks."""
    from autograder.reference import numpy_ref

    constants = {name for name in numpy_ref.__all__ if name.isupper()}  # DTYPE_BYTES, TRAINING_DTYPES: data
    assert set(GRADED_NUMPY) == set(numpy_ref.__all__) - constants
