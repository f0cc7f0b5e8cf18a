"""Everything a student sends is hostile, outside the kernel too: the grader's own pipeline, its files and its pages.

Unit tests, one rule each (the input rule of ``inputs.py``, bounded parsing and decoding, formula-safe CSV,
collision-free file names, sanitised notebooks, exact exception classes and NaN), then ONE grading run of a small
class of attackers and two bystanders on the grader's fixture assignment: every attacker gains nothing, every student
has a row and a reason in ``grades.csv``, the bystanders keep full marks, and nothing the grader writes into
``--out`` carries active content or a spreadsheet formula.
"""

from __future__ import annotations

import csv
import datetime as dt
import inspect
import io
import json
import os
import re
import threading
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from grading_cli import ASSIGNMENT, SOURCE, grade

from autograder.checks import core
from autograder.checks.compare import expect_array, expect_raises
from autograder.grading import feedback, filenames, inputs, lateness, outputs, picking, similarity
from autograder.grading.cli import find_submissions
from autograder.grading.lms_export import write_canvas
from autograder.grading.records import GradeResult, TestRecord
from autograder.grading.report import read_history, update_history
from autograder.grading.roster import Person, Roster
from autograder.student import transport
from autograder.student.probes import token_embeddings as TE
from autograder.student.verdict import CheckFailed

pytestmark = pytest.mark.xdist_group("hostile")

NOTEBOOK = f"{ASSIGNMENT}.ipynb"
SOURCE_NB = json.loads(SOURCE.read_text())


# ------------------------------------------------------------------------------------------------ helpers
def _nested_stored_npz(n: int) -> bytes:
    """An ``.npz`` of ``n`` stored members where member k's data runs from its own ``.npy`` header to the central
    directory, over every later member: a few hundred kilobytes that ``numpy.load`` reads as ``~n^2/2`` header
    sizes (the overlapping "zip bomb"; Python's zipfile does not detect the overlap). Self-contained: the grading
    run's attacker builds it in its kernel from this function's source."""
    import struct
    import zlib

    def npy_header(length):
        text = "{'descr': '|u1', 'fortran_order': False, 'shape': (" + str(length) + ",), }"
        text += " " * (64 - (10 + len(text) + 1) % 64) + "\n"
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")

    names = [f"a{k}.npy".encode() for k in range(n)]
    tail, entries = b"", [None] * n
    for k in reversed(range(n)):  # member k = its .npy header + every later member
        data = npy_header(len(tail)) + tail
        crc = zlib.crc32(data)
        local = struct.pack("<4s5H3I2H", b"PK\x03\x04", 20, 0, 0, 0, 0, crc, len(data), len(data), len(names[k]), 0)
        entries[k] = (crc, len(data), len(data) - len(tail))
        tail = local + names[k] + data
    directory, offset = b"", 0
    for k, (crc, size, header_len) in enumerate(entries):
        directory += struct.pack(
            "<4s6H3I5H2I", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, crc, size, size, len(names[k]), 0, 0, 0, 0, 0, offset
        )
        directory += names[k]
        offset += 30 + len(names[k]) + header_len
    end = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, n, n, len(directory), len(tail), 0)
    return tail + directory + end


def _payload(npz: bytes, header: object) -> bytes:
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + npz


def _answer(nb: dict, grade_id: str) -> dict:
    return next(c for c in nb["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id)


def _solved() -> dict:
    from autograder.grading.benchmarks import synthetic

    return synthetic.solved(SOURCE_NB)


def _within(seconds: float, fn, *args):
    """``fn(*args)`` run in a thread; fails the test when it has not returned after ``seconds`` (a guard against
    quadratic blow-ups measured in minutes, not a speed target)."""
    box: dict = {}

    def run():
        try:
            box["value"] = fn(*args)
        except BaseException as exc:  # handed back to the test
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{fn.__name__} did not finish within {seconds:g} s"
    if "error" in box:
        raise box["error"]
    return box["value"]


# ------------------------------------------------------------------------------------------------ 1. inputs
def test_the_input_rule_reads_regular_files_inside_submissions(tmp_path):
    root = tmp_path / "submitted"
    (root / "alice" / ASSIGNMENT).mkdir(parents=True)
    good = root / "alice" / ASSIGNMENT / NOTEBOOK
    good.write_bytes(SOURCE.read_bytes())
    assert inputs.read_notebook(root, good) == SOURCE.read_bytes()
    with pytest.raises(inputs.Rejected, match="larger than 10 bytes"):
        inputs.read_bytes(root, good, 10)
    with pytest.raises(inputs.Rejected, match="not inside"):
        inputs.read_bytes(root, tmp_path / "elsewhere.txt", 100)
    with pytest.raises(FileNotFoundError):
        inputs.read_bytes(root, root / "alice" / "nothing.txt", 100)


@pytest.mark.parametrize("what", ["notebook", "assignment folder", "student folder", "dev-zero", "fifo"])
def test_the_input_rule_never_follows_a_link(tmp_path, what):
    root = tmp_path / "submitted"
    (root / "bob" / ASSIGNMENT).mkdir(parents=True)
    (root / "bob" / ASSIGNMENT / NOTEBOOK).write_bytes(SOURCE.read_bytes())
    folder = root / "mallory" / ASSIGNMENT
    if what == "notebook":
        folder.mkdir(parents=True)
        (folder / NOTEBOOK).symlink_to(SOURCE)
        expected = "is a symbolic link"
    elif what == "assignment folder":
        folder.parent.mkdir(parents=True)
        folder.symlink_to(root / "bob" / ASSIGNMENT)
        expected = "is a symbolic link"
    elif what == "student folder":
        (root / "mallory").symlink_to(root / "bob")
        expected = "is a symbolic link"
    elif what == "dev-zero":
        folder.mkdir(parents=True)
        (folder / NOTEBOOK).symlink_to("/dev/zero")
        expected = "is a symbolic link"
    else:
        folder.mkdir(parents=True)
        os.mkfifo(folder / NOTEBOOK)
        expected = "not a regular file"
    with pytest.raises(inputs.Rejected, match=expected):
        _within(10, inputs.read_notebook, root, folder / NOTEBOOK)
    picks = _within(10, find_submissions, root, ASSIGNMENT, ASSIGNMENT, picking.grade_ids_of(SOURCE.read_bytes()))
    assert picks["mallory"].path is None and expected in picks["mallory"].problem, picks["mallory"]
    assert picks["bob"].path == root / "bob" / ASSIGNMENT / NOTEBOOK and not picks["bob"].problem


def test_a_folder_of_many_candidates_is_refused_without_reading_them(tmp_path):
    for i in range(picking.MAX_CANDIDATES + 1):
        (tmp_path / f"copy{i}.ipynb").write_text("{}")
    pick = picking.pick_notebook(tmp_path, ASSIGNMENT, {"test_scale"})
    assert pick.path is None and "at most" in pick.problem


def test_a_linked_timestamp_is_a_reason_and_is_never_read(tmp_path):
    folder = tmp_path / "submitted" / "carol" / ASSIGNMENT
    folder.mkdir(parents=True)
    (folder / lateness.TIMESTAMP_FILE).symlink_to("/dev/zero")
    stamp = _within(10, lateness.read_timestamp, folder, None, tmp_path / "submitted")
    assert stamp.time is None and "symbolic link" in stamp.problem
    (folder / lateness.TIMESTAMP_FILE).unlink()
    (folder / lateness.TIMESTAMP_FILE).write_text("2026-12-01 10:00:00 UTC\n" + "x" * 5000)
    assert "larger than" in lateness.read_timestamp(folder, root=tmp_path / "submitted").problem
    (folder / lateness.TIMESTAMP_FILE).write_text("2026-12-01 10:00:00 UTC\n")
    assert lateness.read_timestamp(folder, root=tmp_path / "submitted").time == dt.datetime(2026, 12, 1, 10)


def test_student_ids_with_markup_are_refused_for_the_formgrader():
    assert inputs.student_id_problem("carol+smith") is None and inputs.student_id_problem("=1+2") is None
    for bad in ("<img src=x onerror=alert(1)>", 'a"b', "tab\there"):
        assert "rename the folder" in inputs.student_id_problem(bad)


# ------------------------------------------------------------------------------------------------ 2. bounded parsing
def test_deep_json_is_a_reason_not_a_recursion_error():
    deep = b'{"cells": [], "metadata": {"x": ' + b"[" * 200_000 + b"]" * 200_000 + b"}}"
    with pytest.raises(inputs.Rejected, match="levels deep"):
        inputs.load_json(deep)
    assert picking.grade_ids_of(deep) == set()
    assert similarity.answer_cells(deep, ["scale_answer"]) == {}
    from autograder.grading.course import notebook_problem

    assert "levels deep" in notebook_problem(deep)
    assert transport.json_depth(b'{"a": "[[[[\\"[[", "b": [[1], {"c": 2}]}') == 3


def test_similarity_is_linear_on_blank_lines_and_costs_one_student_only():
    bomb = _solved()
    _answer(bomb, "scale_answer")["source"] += " \n" * 100_000  # quadratic for ^\s* (minutes)
    deep = b'{"cells": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    answers = {"bomb": json.dumps(bomb).encode(), "deep": deep, "ok": json.dumps(_solved()).encode()}
    warnings: list[str] = []
    flags = _within(60, similarity.class_flags, SOURCE.read_bytes(), answers, warnings.append)
    assert flags.get("bomb") and flags.get("ok"), flags  # both copy the solution: compared, and flagged
    failing = dict(answers, broken=b"\xff")
    _within(60, similarity.class_flags, SOURCE.read_bytes(), failing, warnings.append)


def test_the_payload_decoder_refuses_overlapping_members():
    bomb = _nested_stored_npz(200)
    with zipfile.ZipFile(io.BytesIO(bomb)) as archive:  # a valid archive whose members overlap
        expanded = sum(info.file_size for info in archive.infolist())
    assert expanded > 20 * len(bomb)
    with pytest.raises(ValueError, match="overlapping"):
        transport.decode(_payload(bomb, {"__array__": "a0"}))
    many = io.BytesIO()
    np.savez(many, **{f"a{i}": np.zeros(1) for i in range(transport.MAX_MEMBERS + 1)})
    with pytest.raises(ValueError, match="arrays"):
        transport.decode(_payload(many.getvalue(), None))


def test_the_payload_decoder_refuses_a_header_that_lies_about_its_size():
    header = io.BytesIO()  # claims 10**9 float64 (8 GB, which numpy.load allocates first), holds 4
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10**9,)})
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("a0.npy", header.getvalue() + np.zeros(4).tobytes())
    with pytest.raises(ValueError, match="does not match its data"):
        transport.decode(_payload(archive.getvalue(), {"__array__": "a0"}))
    blob = transport.encode({"x": np.arange(6.0).reshape(2, 3), "n": [float("nan"), 1]})
    back = transport.decode(blob)
    assert np.array_equal(back["x"], np.arange(6.0).reshape(2, 3)) and back["x"].flags.writeable


# ------------------------------------------------------------------------------------------------ 3. outputs
@pytest.mark.parametrize("value", ["=1+2", "+33", "-x", "@SUM(A1)", "\tTAB", "\rCR", "'quoted", '=HYPERLINK("x")'])
def test_csv_cells_never_start_a_formula(value):
    cell = outputs.csv_cell(value)
    assert cell.startswith("'") and outputs.csv_value(cell) == value


def test_csv_numbers_and_plain_text_pass():
    for value in ("-1.5", "3", "alice", "", "1e-3"):
        assert outputs.csv_cell(value) == value


def test_every_csv_writer_neutralises_formulas(tmp_path):
    row = GradeResult("=1+2", ASSIGNMENT, "graded", 3.0, 5.0)
    from autograder.grading.scores import GradebookView, build_row

    final = build_row(row, GradebookView(), lambda score=None: lateness.Lateness(None, None, None), notebook="@x.ipynb")
    roster = Roster({"=1+2": Person("=1+2", name="-2+3*cmd", email="@evil", section="+1")})
    write_canvas(tmp_path, [final], roster, "=col")
    cells = [c for line in csv.reader(open(tmp_path / "canvas.csv", newline="")) for c in line]
    assert not any(c[:1] in ("=", "+", "-", "@") and not re.fullmatch(r"-?\d+(\.\d+)?", c) for c in cells), cells
    update_history(tmp_path, [final])
    update_history(tmp_path, [final])  # unchanged: the student is read back as written, no second line
    history = read_history(tmp_path)
    assert [h["student"] for h in history] == ["=1+2"]
    assert "'=1+2" in (tmp_path / "history.csv").read_text()


def test_file_names_are_unique_and_reversible():
    ids = ["carol+smith", "carol_smith", "carol smith", "carol%2Bsmith", "..", ".x", "josé", "a" * 400, "b" * 400]
    names = [filenames.safe_filename(i) for i in ids]
    assert len(set(names)) == len(ids)
    assert all("/" not in n and n not in (".", "..") and not n.startswith(".") for n in names)
    assert all(len(n.encode()) <= 255 for n in names)
    assert [filenames.original_name(n) for n in names[:7]] == ids[:7]
    assert filenames.safe_filename("alice@uni.edu") == "alice@uni.edu"  # real ids keep their files


def test_the_formgrader_notebook_carries_no_active_content():
    nb = _solved()
    nb["cells"].append(
        {"cell_type": "markdown", "metadata": {"tags": ['x" onclick="y']}, "source": "<script>1</script>"}
    )
    nb["cells"].append(
        {
            "cell_type": "code",
            "metadata": {},
            "execution_count": 1,
            "source": "x",
            "outputs": [
                {
                    "output_type": "display_data",
                    "data": {"text/html": "<b onmouseover=1>", "application/javascript": "1", "image/png": '"><s>'},
                    "metadata": {"width": '" onload="1'},
                },
                {"output_type": "execute_result", "execution_count": 1, "metadata": {}, "data": {"text/plain": "4"}},
            ],
        }
    )
    text = outputs.sanitize_notebook(json.dumps(nb), SOURCE.read_bytes())
    import nbformat

    nbformat.validate(nbformat.reads(text, as_version=4))
    clean = json.loads(text)
    mimes = {m for c in clean["cells"] for o in c.get("outputs", []) for m in o.get("data", {})}
    assert mimes <= set(outputs.KEPT_MIMETYPES)
    assert "onclick" not in text and "onload" not in text and '"><s>' not in text
    md = [c["source"] for c in clean["cells"] if c["cell_type"] == "markdown"]
    assert md[0] == "".join(SOURCE_NB["cells"][0]["source"])  # the assignment's own markdown is kept
    assert md[-1].startswith("```text\n<script>")  # the student's is shown as text
    from nbconvert import HTMLExporter

    html, _ = HTMLExporter(template_name="classic").from_notebook_node(nbformat.reads(text, as_version=4))
    body = html[html.index("<body") :]
    assert "<script>1</script>" not in body and "onmouseover" not in body


def test_feedback_pages_escape_every_student_string():
    evil = "<script>alert(1)</script>"
    result = GradeResult(
        evil,
        ASSIGNMENT,
        "graded",
        0.0,
        5.0,
        reason=evil,
        tests=[TestRecord(evil, 0.0, 2.0, False, evil, False, ((evil, False, evil),), "wrong")],
    )
    page = feedback.render(result)
    assert "<script" not in page and "&lt;script&gt;" in page


# ------------------------------------------------------------------------------------------------ 4. points, no code
class _EveryError(IndexError, TypeError, ValueError, KeyError):
    pass


def test_an_exception_class_made_by_the_student_matches_no_expected_type():
    forged = transport.decode(transport.encode(transport.Raised.from_exc(_EveryError("x"))))
    assert forged.claims(ValueError) and forged.claims(IndexError)  # what the old rule believed
    for expected in (IndexError, TypeError, ValueError, KeyError):
        assert not forged.is_a(expected)
        with pytest.raises(CheckFailed, match="a class defined in the notebook"):
            expect_raises(forged, expected, "f(x)")
    expect_raises(transport.Raised.from_exc(ValueError("v")), ValueError, "f(x)")
    axis = transport.Raised.from_exc(np.exceptions.AxisError(3, 2))
    assert axis.is_a(IndexError) and axis.is_a(ValueError)  # NumPy's own subclass counts
    # a record that names a class outside Python, NumPy and PyTorch, or one not loaded, is nothing
    assert not transport.Raised("ValueError", ("evil.ValueError",), "").is_a(ValueError)
    assert transport.resolve_exception("os.system") is None and transport.resolve_exception("builtins.len") is None


def test_a_table_of_nan_earns_nothing():
    sizes = TE.xavier_sizes(core.VISIBLE_SEED, False)
    data = [{"a": np.full((v, d), np.nan, np.float32)} for v, d in sizes]
    verdicts = core.judge_group("token-embeddings", "xavier_uniform", {TE.XAVIER_VALUES: data}, seed=1)
    values = dict((n, ok) for n, ok, _ in verdicts)
    assert values[TE.XAVIER_VALUES] is False, verdicts
    with pytest.raises(CheckFailed):
        expect_array(np.full(3, np.nan), np.zeros(3), "f")
    expect_array(np.array([np.nan, 1.0]), np.array([np.nan, 1.0]), "f")  # NaN where the reference has NaN


# ------------------------------------------------------------------------------------------------ 5. one grading run
_EVIL = (
    '''import numpy as np


class EveryError(IndexError, TypeError, ValueError, KeyError, ArithmeticError):
    """Inherits from every error type a check might expect."""


def scale(x, factor):
    return np.full(np.shape(x), np.nan)


def unit(v):
    raise EveryError("no code here")
'''
    + " \n" * 60_000
)  # and a similarity regular-expression bomb

_MARKUP_MD = (
    "# Notes\n<script>alert('md')</script><img src=x onerror=alert(1)>\n"
    "[click](javascript:alert(1)) <svg onload=alert(1)></svg>"
)
_MARKUP_CODE = """from IPython.display import HTML, Javascript, SVG, Markdown, display
display(HTML("<script>alert('out')</script><b onmouseover=alert(1)>hi</b>"))
display(Javascript("alert('js')"))
display(SVG('<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>'))
display(Markdown("<img src=x onerror=alert(1)>"))
display({"text/html": "<iframe src=javascript:alert(1)>", "text/plain": "plain"}, raw=True)
"""
_BOMB_CODE = (
    inspect.getsource(_nested_stored_npz)
    + """
import base64, json
import autograder.student.grading as _g
from IPython.display import publish_display_data


def _forged_emit():
    npz = _nested_stored_npz(3000)
    header = {"__dict__": [[g, {"__dict__": []}] for g in ("test_scale", "test_unit")]}
    text = json.dumps(header).encode()
    blob = len(text).to_bytes(8, "little") + text + npz
    publish_display_data({_g.MIME: base64.b64encode(blob).decode("ascii")})


_g.emit = _forged_emit
"""
)

BYSTANDERS = ("carol+smith", "carol_smith")  # ids a lossy sanitiser would give one feedback page


class _ActiveContent(HTMLParser):
    """Every element or attribute of an HTML page that a browser would run: script, iframe, object and embed
    elements, ``on*`` handlers, ``javascript:`` URLs (escaped text that merely *reads* like markup is not)."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "iframe", "object", "embed"):
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on") or (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}={value!r}>")


def _active(html: str) -> list[str]:
    parser = _ActiveContent()
    parser.feed(html)
    return parser.found


def _write(root: Path, student: str, data: bytes, name: str = NOTEBOOK) -> Path:
    folder = root / student / ASSIGNMENT
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    (folder / "timestamp.txt").write_text("2026-12-01 10:00:00 UTC\n")
    return folder


@pytest.fixture(scope="module")
def hostile_class(tmp_path_factory):
    """The class, graded once: (submissions, out, the command's result)."""
    top = tmp_path_factory.mktemp("hostile")
    root, out = top / "submitted", top / "out"
    solved = json.dumps(_solved()).encode()
    for student in BYSTANDERS:
        _write(root, student, solved)
    # symbolic links: to the solutions notebook, to a classmate's assignment folder, a whole student folder
    (root / "linked-notebook" / ASSIGNMENT).mkdir(parents=True)
    (root / "linked-notebook" / ASSIGNMENT / NOTEBOOK).symlink_to(SOURCE)
    (root / "linked-folder").mkdir()
    (root / "linked-folder" / ASSIGNMENT).symlink_to(root / "carol_smith" / ASSIGNMENT)
    (root / "linked-student").symlink_to(root / "carol+smith")
    # deep JSON; an id that is markup
    _write(root, "deep", b'{"cells": [], "metadata": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_000 + b"}")
    _write(root, "<img src=x onerror=alert(1)>", solved)
    # points without code + regex bomb + /dev/zero timestamp + a notebook name that is a formula
    evil = _solved()
    _answer(evil, "scale_answer")["source"] = _EVIL
    _answer(evil, "unit_answer")["source"] = "pass"
    folder = _write(root, "-evil", json.dumps(evil).encode(), name="+SUM(1).ipynb")
    (folder / "timestamp.txt").unlink()
    (folder / "timestamp.txt").symlink_to("/dev/zero")
    # markup in markdown and outputs, and a forged overlapping-zip payload, under a formula id
    markup = _solved()
    _answer(markup, "scale_answer")["source"] = "import numpy as np\n\ndef scale(x, factor):\n    return x\n"
    cells = markup["cells"]
    cells.insert(1, {"cell_type": "markdown", "metadata": {}, "source": _MARKUP_MD})
    cells.insert(
        2, {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": _MARKUP_CODE}
    )
    cells.insert(3, {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": _BOMB_CODE})
    _write(root, "=1+2", json.dumps(markup).encode())
    proc = grade(
        root,
        out,
        "--jobs",
        "2",
        "--timeout",
        "60",
        "--memory",
        "2",
        "--due",
        "2026-12-02T00:00Z",
        "--export",
        "canvas",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root, out, proc


def _rows(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "grades.csv", newline="", encoding="utf-8") as fh:
        return {outputs.csv_value(r["student"]): r for r in csv.DictReader(fh)}


def test_every_student_has_a_row_and_a_reason(hostile_class):
    root, out, _ = hostile_class
    rows = _rows(out)
    assert set(rows) == {p.name for p in root.iterdir()}, sorted(rows)
    for student in ("linked-notebook", "linked-folder", "linked-student"):
        assert rows[student]["status"] == "invalid-notebook" and "symbolic link" in rows[student]["reason"], rows[
            student
        ]
    assert rows["deep"]["status"] == "invalid-notebook" and "levels deep" in rows["deep"]["reason"]
    assert "rename the folder" in rows["<img src=x onerror=alert(1)>"]["reason"]
    assert "lateness unknown" in rows["-evil"]["reason"] and "symbolic link" in rows["-evil"]["reason"]


def test_attackers_gain_nothing_and_bystanders_keep_full_marks(hostile_class):
    _, out, _ = hostile_class
    rows = _rows(out)
    for student in BYSTANDERS:
        assert (rows[student]["status"], rows[student]["score"]) == ("graded", "5"), rows[student]
    for student, row in rows.items():
        if student not in BYSTANDERS:
            assert row["score"] in ("", "0"), (student, row)
    stored = json.loads((out / ".autograder" / ASSIGNMENT / f"{filenames.safe_filename('=1+2')}.json").read_text())
    assert all(t["kind"] in ("no-results", "wrong", "kernel-error") for t in stored["tests"]), stored["tests"]
    assert "unreadable probe payload" in json.dumps(stored["tests"]), stored["tests"]


def test_no_linked_solution_is_kept_as_a_students_notebook(hostile_class):
    _, out, _ = hostile_class
    kept = {p.relative_to(out / "autograded").parts[0] for p in (out / "autograded").rglob("*.ipynb")}
    assert kept == {*BYSTANDERS, "-evil", "=1+2"}, kept


def test_out_carries_no_active_content(hostile_class):
    _, out, _ = hostile_class
    pages = [out / "report.html", *(out / "feedback").rglob("*.html")]
    assert len(pages) == 1 + len(_rows(out))
    for page in pages:
        assert not _active(page.read_text(encoding="utf-8")), (page, _active(page.read_text(encoding="utf-8")))
    for notebook in (out / "autograded").rglob("*.ipynb"):
        nb = json.loads(notebook.read_text())
        mimes = {m for c in nb["cells"] for o in c.get("outputs", []) for m in o.get("data", {})}
        assert mimes <= {"text/plain", "image/png", "image/jpeg"}, (notebook, mimes)
        for cell in nb["cells"]:
            if cell["cell_type"] == "markdown" and "<script" in cell["source"]:
                assert cell["source"].startswith("```"), cell["source"]
    assert "HTMLExporter.sanitize_html = True" in (out / "nbgrader_config.py").read_text()


def test_colliding_ids_get_their_own_feedback_pages(hostile_class):
    _, out, _ = hostile_class
    pages = {s: out / "feedback" / filenames.safe_filename(s) / ASSIGNMENT / f"{ASSIGNMENT}.html" for s in BYSTANDERS}
    assert len({p.parent.parent for p in pages.values()}) == 2
    for student, page in pages.items():
        assert f"<strong>{student}</strong>" in page.read_text(), student


def test_csv_cells_are_neutralised(hostile_class):
    _, out, _ = hostile_class
    for name in ("grades.csv", "canvas.csv", "history.csv"):
        with open(out / name, newline="", encoding="utf-8") as fh:
            for line in csv.reader(fh):
                for cell in line:
                    risky = cell[:1] in ("=", "+", "-", "@", "\t", "\r")
                    assert not risky or re.fullmatch(r"-?\d+(\.\d+)?", cell), (name, cell)
    assert _rows(out)["-evil"]["notebook"] == "'+SUM(1).ipynb"
