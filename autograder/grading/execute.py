"""nbgrader's ``Execute`` preprocessor with a cap on all output, and the probe payload collected at the end.

nbgrader's own ``LimitOutput`` trims a notebook *after* execution, by which time gigabytes of output have already
been collected in the grading process. :class:`LimitedExecute` charges every message that can put text into the
executed notebook against one budget of ``output_chars`` characters for the whole notebook, as it arrives, and
drops what is past it (leaving one note in the cell where that happened):

* ``stream``, ``display_data``, ``execute_result``: every string in the message's content (text, data of every
  MIME type, metadata, keys) counts;
* ``update_display_data``, and a display that reuses a ``display_id``: nbclient copies the new data into every
  earlier output with that id, so the update counts once per output it would rewrite, and is dropped past the cap;
* ``error``: an error is always recorded (nbgrader fails a test cell that raised, so the cap changes no verdict),
  but shortened first to :data:`ERROR_CHARS` (the exception's name and value cut, the traceback's last lines), and
  past the cap to its name and the first 200 characters of its value, one per cell; so is the error of the shell
  reply, which nbgrader adds to a cell whose error was not published;
* ``comm`` messages (widgets) are ignored and no widget state is stored: grading needs none, and nbclient would
  keep their data in the notebook's metadata.

Past the cap, the first 200 characters of a cell's stderr still pass, because nbgrader fails a test cell that wrote
to stderr. What the cap leaves per cell past it (a note, an error's name and value, 200 characters of stderr) is
bounded, so a notebook's outputs stay within ``output_chars`` plus about 1 KiB per cell.

After the notebook's last cell, :meth:`LimitedExecute.collect_probes` executes ``emit_code`` in the same kernel
and keeps the one ``display_data`` of ``emit_mime`` that this request (and no earlier cell) published, outside the
notebook and outside the output cap, up to ``emit_bytes``; it writes the payload's text to ``emit_file`` (in the
trusted course directory, which the sandboxed kernel cannot see) or nothing. Two payloads in one request (a
student's thread publishing a forged one) count as none.
"""

from __future__ import annotations

from nbformat.v4 import new_output
from nbgrader.preprocessors import Execute
from traitlets import Bool, Float, Integer, Unicode

__all__ = ["LimitedExecute", "TRUNCATION_NOTE", "ERROR_CHARS", "content_chars", "shorten_error"]

TRUNCATION_NOTE = "\n[... output truncated by the grader: more than {limit:,} characters were printed ...]\n"
ERROR_CHARS = 20_000  # the most of one error (name, value, traceback) kept in the notebook
_PAST_CAP_CHARS = 200  # past the cap: this much of an error's value, and of a cell's stderr


def content_chars(content) -> int:
    """Characters of every string (keys included) in a message's decoded JSON ``content``; anything else counts
    as its ``str``. Iterative, so a deeply nested message cannot exhaust the stack."""
    total, stack = 0, [content]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, dict):
            total += sum(len(k) if isinstance(k, str) else 8 for k in item)
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            total += len(item)
            stack.extend(item)
        else:
            total += len(str(item))
    return total


def shorten_error(content: dict, limit: int = ERROR_CHARS) -> dict:
    """An ``error`` message's content within about ``limit`` characters: ``ename`` and ``evalue`` cut, then the
    traceback's last lines (the raise site) kept while they fit, each line cut to the room left."""

    def text(value, n):
        value = value if isinstance(value, str) else str(value)
        return value if len(value) <= n else value[:n] + f"... [{len(value) - n:,} characters cut by the grader]"

    ename = text(content.get("ename", ""), 200)
    evalue = text(content.get("evalue", ""), min(2_000, limit // 4))
    room = max(0, limit - len(ename) - len(evalue))
    lines = content.get("traceback") if isinstance(content.get("traceback"), list) else []
    kept: list[str] = []
    for line in reversed(lines):
        if room <= 0:
            break
        line = text(line, room)
        kept.append(line)
        room -= len(line)
    if len(kept) < len(lines):
        kept.append(f"[... {len(lines) - len(kept)} traceback lines cut by the grader ...]")
    return {**content, "ename": ename, "evalue": evalue, "traceback": kept[::-1]}


class LimitedExecute(Execute):
    output_chars = Integer(200_000, help="characters of output kept per notebook; the rest is dropped").tag(config=True)

    emit_code = Unicode("", help="code run after the last cell to publish the probe payload").tag(config=True)
    emit_mime = Unicode("application/vnd.autograder.probes+base64").tag(config=True)
    emit_file = Unicode("", help="where the payload's text is written").tag(config=True)
    emit_bytes = Integer(256 << 20, help="largest payload accepted").tag(config=True)
    emit_timeout = Float(120.0, help="seconds the payload may take").tag(config=True)
    progress_file = Unicode("", help="where the index of the cell about to run is written (crash reports)").tag(
        config=True
    )
    store_widget_state = Bool(False, help="never: widget state is student data outside the output cap").tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        self._printed = 0
        self._noted_cells: set[int] = set()
        return super().preprocess(nb, resources, km)

    def _charge(self, chars: int) -> bool:
        """Count ``chars`` against the notebook's budget; whether they still fit."""
        self._printed = getattr(self, "_printed", 0) + chars
        return self._printed <= self.output_chars

    def _note(self, outs, cell_index: int) -> None:
        noted = self.__dict__.setdefault("_noted_cells", set())
        if cell_index not in noted:
            noted.add(cell_index)
            # stdout: nbgrader scores a test cell with any stderr output as failed
            outs.append(new_output("stream", name="stdout", text=TRUNCATION_NOTE.format(limit=self.output_chars)))

    def _update_display_id(self, display_id, msg):
        """nbclient rewrites every earlier output with this ``display_id``: charged once per output rewritten."""
        targets = sum(len(idx) for idx in self._display_id_map.get(display_id, {}).values())
        if targets and not self._charge(targets * content_chars(msg.get("content", {}))):
            return None
        return super()._update_display_id(display_id, msg)

    def on_cell_executed(self, **kwargs):
        """nbgrader appends the shell reply's error to the cell when no recorded error has its ``ename`` (a student
        who silenced ``showtraceback``, or whose exception's name was cut here): that error is shortened and
        charged too."""
        reply = kwargs.get("execute_reply") or {}
        content = reply.get("content") or {}
        if content.get("status") == "error":
            short = shorten_error(content)
            outs = kwargs["cell"].outputs if kwargs.get("cell") is not None else []
            if not any(o.get("output_type") == "error" and o.get("ename") == short["ename"] for o in outs):
                if not self._charge(content_chars(short)):
                    short = {**shorten_error(content, _PAST_CAP_CHARS), "traceback": ["[cut by the grader]"]}
            kwargs = {**kwargs, "execute_reply": {**reply, "content": short}}
        return super().on_cell_executed(**kwargs)

    def handle_comm_msg(self, outs, msg, cell_index):
        """Widgets: ignored (no output hooks, no stored state; see the module doc)."""
        return None

    def preprocess_cell(self, cell, resources, index):
        if self.progress_file and cell.cell_type == "code":  # the grader names this cell if the kernel dies or hangs
            self._write_progress(cell, index)
        out = super().preprocess_cell(cell, resources, index)
        if index == len(self.nb.cells) - 1 and self.emit_code and self.emit_file:
            self.collect_probes()
        return out

    def _write_progress(self, cell, index: int) -> None:
        """The cell about to run, as JSON: its number among the code cells, its nbgrader name, whether it is a
        locked test cell, and (only for a cell that is not one: the student's own code) its first line."""
        import json

        meta = cell.get("metadata", {}).get("nbgrader", {})
        test = bool(meta.get("grade") and not meta.get("solution")) or bool(meta.get("locked"))
        lines = [line.strip() for line in cell.source.splitlines() if line.strip()]
        info = {
            "code_cell": sum(c.cell_type == "code" for c in self.nb.cells[: index + 1]),
            "code_cells": sum(c.cell_type == "code" for c in self.nb.cells),
            "grade_id": str(meta.get("grade_id", "")),
            "test": test,
            "first_line": "" if test or not lines else lines[0][:80],
        }
        with open(self.progress_file, "w", encoding="utf-8") as fh:
            json.dump(info, fh)

    def collect_probes(self) -> None:
        """Run ``emit_code`` and write the single payload it published to ``emit_file`` (see the module doc)."""
        import time

        from jupyter_core.utils import run_sync

        msg_id = self.kc.execute(self.emit_code, silent=False, store_history=False, allow_stdin=False)
        deadline = time.monotonic() + self.emit_timeout
        payloads, size, idle = [], 0, False
        while not idle and time.monotonic() < deadline:
            try:
                msg = run_sync(self.kc.get_iopub_msg)(timeout=max(0.01, deadline - time.monotonic()))
            except Exception:  # queue.Empty (the kernel went quiet or died), or a closed channel
                break
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg.get("msg_type"), msg.get("content", {})
            if kind == "status" and content.get("execution_state") == "idle":
                idle = True
            elif kind in ("display_data", "execute_result") and self.emit_mime in content.get("data", {}):
                text = content["data"][self.emit_mime]
                size += len(text) if isinstance(text, str) else 0
                payloads.append(text if size <= self.emit_bytes else None)  # too big: kept as a refusal
        if idle and len(payloads) == 1 and isinstance(payloads[0], str):
            with open(self.emit_file, "w") as fh:
                fh.write(payloads[0])

    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content") or {}
        kind = msg.get("msg_type")
        if kind == "error":
            short = shorten_error(content)
            if not self._charge(content_chars(short)):
                if any(o.get("output_type") == "error" for o in outs):
                    self._note(outs, cell_index)
                    return None  # the cell already failed; one error per cell is kept past the cap
                short = {**shorten_error(content, _PAST_CAP_CHARS), "traceback": []}
                self._note(outs, cell_index)
            return super().output(outs, {**msg, "content": short}, display_id, cell_index)
        if self._charge(content_chars(content)):
            return super().output(outs, msg, display_id, cell_index)
        self._note(outs, cell_index)
        if (
            kind == "stream"
            and content.get("name") == "stderr"
            and not any(o.get("output_type") == "stream" and o.get("name") == "stderr" for o in outs)
        ):
            # past the cap, one short line of stderr still reaches the notebook: it decides nbgrader's verdict
            outs.append(new_output("stream", name="stderr", text=str(content.get("text", ""))[:_PAST_CAP_CHARS]))
        return None
