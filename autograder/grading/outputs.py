"""Outputs that cannot carry markup or formulas: every file the grader writes into ``--out`` from student data.

* **CSV** (``grades.csv``, ``canvas.csv``, ``history.csv``): every cell goes through :func:`csv_cell`, OWASP's rule
  against formula injection. A cell that a spreadsheet would read as a formula -- one beginning with ``=``, ``+``,
  ``-``, ``@``, a tab or a carriage return -- gets a leading single quote, so it is shown as text; plain numbers
  (``-1.5``) are left alone. A cell that already begins with a quote gets one more, so :func:`csv_value` gives
  back exactly the value written. Every CSV writer uses :func:`csv_writer` or :func:`csv_dict_writer`.
* **Notebooks kept for the formgrader** (``autograded/``): :func:`sanitize_notebook`. nbgrader's formgrader renders
  them with nbconvert's HTML exporter, which passes raw HTML in markdown and ``text/html``/JavaScript outputs to the
  instructor's browser, on the Jupyter server's own origin. What is kept: every code cell's source, ``text/plain``
  and stream outputs, tracebacks (rendered as text), and PNG/JPEG images whose data is plain base64; every other
  output (HTML, JavaScript, SVG, Markdown, LaTeX, JSON, widgets) is replaced by one line of text naming what was
  removed. Markdown cells the student wrote or changed are shown as their source text in a fenced code block (never
  rendered); markdown cells identical to the assignment's own are kept. Cell attachments, cell tags and metadata
  other than nbgrader's (for the assignment's own grade ids) go, and a cell id that is not nbformat's
  ``[A-Za-z0-9_-]`` is replaced.
* **HTML pages** the grader writes itself (``report.html``, ``feedback/``) escape every student-derived string
  (``html.escape`` in :mod:`~autograder.grading.report` and :mod:`~autograder.grading.feedback`).
"""

from __future__ import annotations

import base64
import binascii
import csv
import json
import re
from typing import Any

__all__ = [
    "csv_cell",
    "csv_value",
    "csv_writer",
    "csv_dict_writer",
    "sanitize_notebook",
    "KEPT_MIMETYPES",
    "REMOVED_NOTE",
]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")
_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def csv_cell(value: Any) -> Any:
    """``value`` as a CSV cell no spreadsheet runs: a string beginning with ``= + - @``, a tab, a carriage return or
    a quote gets a leading ``'`` (OWASP CSV injection); numbers, plain numeric strings and other values pass."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_value(cell: str) -> str:
    """The value :func:`csv_cell` wrote as ``cell`` (for the grader's own reads of its CSV files)."""
    if cell.startswith("'") and len(cell) > 1 and cell[1:].startswith(_FORMULA_START):
        return cell[1:]
    return cell


class _Writer:
    def __init__(self, writer):
        self._writer = writer

    def writerow(self, row):
        if isinstance(row, dict):
            return self._writer.writerow({k: csv_cell(v) for k, v in row.items()})
        return self._writer.writerow([csv_cell(v) for v in row])

    def writerows(self, rows):
        for row in rows:
            self.writerow(row)

    def writeheader(self):
        return self._writer.writeheader()


def csv_writer(fh, **kwargs) -> _Writer:
    """``csv.writer(fh)`` whose every cell goes through :func:`csv_cell`."""
    return _Writer(csv.writer(fh, **kwargs))


def csv_dict_writer(fh, fieldnames, **kwargs) -> _Writer:
    """``csv.DictWriter(fh, fieldnames)`` whose every cell goes through :func:`csv_cell`."""
    return _Writer(csv.DictWriter(fh, fieldnames, **kwargs))


# ------------------------------------------------------------------------------------------------ notebooks
#: output data kept in the formgrader's notebooks; every other MIME type is removed
KEPT_MIMETYPES = ("text/plain", "image/png", "image/jpeg")
REMOVED_NOTE = "[removed by the grader: {what} output is not shown to the instructor (it could run in the browser)]"
_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]*")
_CELL_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(v for v in value if isinstance(v, str))
    return ""


def _image_ok(value: Any) -> bool:
    text = _text(value)
    if not text or not _BASE64.fullmatch(text):
        return False
    try:
        base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _output(out: Any) -> dict | None:
    if not isinstance(out, dict):
        return None
    kind = out.get("output_type")
    if kind == "stream":
        name = out.get("name") if out.get("name") in ("stdout", "stderr") else "stdout"
        return {"output_type": "stream", "name": name, "text": _text(out.get("text"))}
    if kind == "error":
        tb = out.get("traceback")
        return {
            "output_type": "error",
            "ename": _text(out.get("ename")),
            "evalue": _text(out.get("evalue")),
            "traceback": [t for t in tb if isinstance(t, str)] if isinstance(tb, list) else [],
        }
    if kind not in ("display_data", "execute_result", "update_display_data"):
        return None
    data = out.get("data") if isinstance(out.get("data"), dict) else {}
    kept, removed = {}, []
    for mime, value in data.items():
        if mime == "text/plain":
            kept[mime] = _text(value)
        elif mime in ("image/png", "image/jpeg") and _image_ok(value):
            kept[mime] = "".join(_text(value).split())
        else:
            removed.append(str(mime)[:60])
    if removed and "text/plain" not in kept:
        kept["text/plain"] = REMOVED_NOTE.format(what=", ".join(sorted(removed)))
    if not kept:
        return None
    clean = {"output_type": "display_data" if kind == "update_display_data" else kind, "data": kept, "metadata": {}}
    if kind == "execute_result":
        count = out.get("execution_count")
        clean["execution_count"] = count if isinstance(count, int) and not isinstance(count, bool) else None
    return clean


def _fence(text: str) -> str:
    """``text`` as a fenced code block no backtick run inside it can close."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def _nbgrader_meta(cell: dict, grade_ids: set[str]) -> dict | None:
    meta = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
    nbg = meta.get("nbgrader")
    if not isinstance(nbg, dict) or nbg.get("grade_id") not in grade_ids:
        return None
    return {k: v for k, v in nbg.items() if isinstance(v, (str, int, float, bool)) or v is None}


def sanitize_notebook(text: str, source: bytes | None = None) -> str:
    """The autograded notebook ``text`` (nbformat 4 JSON) with nothing a browser would run (see the module
    docstring). ``source`` (the assignment's nbgrader source notebook) names the markdown cells and grade ids that
    are the instructor's own. Raises ``ValueError`` when ``text`` is not a notebook (the caller then keeps none)."""
    from autograder.student.transport import loads_limited

    nb = loads_limited(text)
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise ValueError("not a notebook")
    course_markdown: set[str] = set()
    grade_ids: set[str] = set()
    course_meta: dict = {}
    if source is not None:
        src = json.loads(source.decode("utf-8"))
        course_meta = src.get("metadata", {}) if isinstance(src.get("metadata"), dict) else {}
        for cell in src.get("cells", []):
            if cell.get("cell_type") == "markdown":
                course_markdown.add(_text(cell.get("source")))
            gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if isinstance(gid, str):
                grade_ids.add(gid)
    cells: list[dict] = []
    seen_ids: set[str] = set()
    for cell in nb["cells"]:
        if not isinstance(cell, dict):
            continue
        kind = cell.get("cell_type")
        body = _text(cell.get("source"))
        meta = {}
        nbg = _nbgrader_meta(cell, grade_ids)
        if nbg is not None:
            meta["nbgrader"] = nbg
        cell_id = cell.get("id")
        if not (isinstance(cell_id, str) and _CELL_ID.fullmatch(cell_id)) or cell_id in seen_ids:
            cell_id = f"cell-{len(cells)}"
            while cell_id in seen_ids:
                cell_id += "x"
        seen_ids.add(cell_id)
        clean: dict[str, Any] = {"id": cell_id, "metadata": meta}
        if kind == "code":
            outputs = cell.get("outputs") if isinstance(cell.get("outputs"), list) else []
            count = cell.get("execution_count")
            clean.update(
                cell_type="code",
                source=body,
                execution_count=count if isinstance(count, int) and not isinstance(count, bool) else None,
                outputs=[o for o in map(_output, outputs) if o is not None],
            )
        elif kind == "markdown":
            clean.update(cell_type="markdown", source=body if body in course_markdown else _fence(body))
        else:  # raw cells (and anything else): shown as text
            clean.update(cell_type="markdown", source=_fence(body))
        cells.append(clean)
    metadata = {k: course_meta[k] for k in ("kernelspec", "language_info") if k in course_meta}
    return json.dumps(
        {"cells": cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": 5},
        indent=1,
        ensure_ascii=False,
    )
