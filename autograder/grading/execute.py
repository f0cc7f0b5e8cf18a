"""nbgrader's ``Execute`` preprocessor with a cap on printed output, and the probe payload collected at the end.

nbgrader's own ``LimitOutput`` trims a notebook *after* execution, by which time gigabytes of printed output have
already been collected in the grading process. :class:`LimitedExecute` counts the characters of every output
message as it arrives and drops them past ``output_chars`` for the whole notebook, leaving one note in the cell
where it happened. Error messages (tracebacks) always pass, and so does the first 200 characters of a cell's
stderr, because nbgrader fails a test cell that wrote to stderr: the cap changes no verdict.

After the notebook's last cell, :meth:`LimitedExecute.collect_probes` executes ``emit_code`` in the same kernel
and keeps the one ``display_data`` of ``emit_mime`` that this request (and no earlier cell) published, outside the
notebook and outside the output cap, up to ``emit_bytes``; it writes the payload's text to ``emit_file`` (in the
trusted course directory, which the sandboxed kernel cannot see) or nothing. Two payloads in one request (a
student's thread publishing a forged one) count as none.
"""

from __future__ import annotations

from nbformat.v4 import new_output
from nbgrader.preprocessors import Execute
from traitlets import Float, Integer, Unicode

__all__ = ["LimitedExecute", "TRUNCATION_NOTE"]

TRUNCATION_NOTE = "\n[... output truncated by the grader: more than {limit:,} characters were printed ...]\n"


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

    def preprocess(self, nb, resources=None, km=None):
        self._printed = 0
        self._noted_cells: set[int] = set()
        return super().preprocess(nb, resources, km)

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
        if msg.get("msg_type") == "error":
            return super().output(outs, msg, display_id, cell_index)
        content = msg.get("content", {})
        size = len(content.get("text", "")) + sum(len(str(v)) for v in content.get("data", {}).values())
        self._printed = getattr(self, "_printed", 0) + size
        if self._printed <= self.output_chars:
            return super().output(outs, msg, display_id, cell_index)
        if cell_index not in self._noted_cells:
            self._noted_cells.add(cell_index)
            # stdout: nbgrader scores a test cell with any stderr output as failed
            outs.append(new_output("stream", name="stdout", text=TRUNCATION_NOTE.format(limit=self.output_chars)))
        if (
            msg.get("msg_type") == "stream"
            and content.get("name") == "stderr"
            and not any(o.get("output_type") == "stream" and o.get("name") == "stderr" for o in outs)
        ):
            # past the cap, one short line of stderr still reaches the notebook: it decides nbgrader's verdict
            outs.append(new_output("stream", name="stderr", text=str(content.get("text", ""))[:200]))
        return None
