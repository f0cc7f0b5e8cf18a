"""nbgrader's ``Execute`` preprocessor with a cap on printed output, applied while the kernel runs.

nbgrader's own ``LimitOutput`` trims a notebook *after* execution, by which time gigabytes of printed output have
already been collected in the grading process. :class:`LimitedExecute` counts the characters of every output
message as it arrives and drops them past ``output_chars`` for the whole notebook, leaving one note in the cell
where it happened. Error messages (tracebacks) always pass, and so does the first 200 characters of a cell's
stderr, because nbgrader fails a test cell that wrote to stderr: the cap changes no verdict.
"""
from __future__ import annotations

from nbformat.v4 import new_output
from nbgrader.preprocessors import Execute
from traitlets import Integer

__all__ = ["LimitedExecute", "TRUNCATION_NOTE"]

TRUNCATION_NOTE = "\n[... output truncated by the grader: more than {limit:,} characters were printed ...]\n"


class LimitedExecute(Execute):
    output_chars = Integer(200_000, help="characters of output kept per notebook; the rest is dropped").tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        self._printed = 0
        self._noted_cells: set[int] = set()
        return super().preprocess(nb, resources, km)

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
        if (msg.get("msg_type") == "stream" and content.get("name") == "stderr"
                and not any(o.get("output_type") == "stream" and o.get("name") == "stderr" for o in outs)):
            # past the cap, one short line of stderr still reaches the notebook: it decides nbgrader's verdict
            outs.append(new_output("stream", name="stderr", text=str(content.get("text", ""))[:200]))
        return None
