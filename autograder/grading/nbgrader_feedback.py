"""What ``nbgrader generate_feedback`` must leave out of the pages it writes from the kept autograded notebooks.

nbgrader's feedback is the executed notebook, hidden tests included (upstream issue #917): its own
``ClearHiddenTests`` clears a hidden-test region from the cell's *source*, but the cell's outputs (a traceback
quotes the failing line, and check output may describe hidden inputs) stay. :class:`ClearHiddenTestOutputs` runs
before it and replaces every output of a cell holding hidden tests with one line. The ``nbgrader_config.py`` that
``grade`` writes into its output folder lists both.
"""

from __future__ import annotations

from nbformat.v4 import new_output
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Unicode

__all__ = ["ClearHiddenTestOutputs", "HIDDEN_OUTPUT_NOTE"]

HIDDEN_OUTPUT_NOTE = "[the output of hidden tests is not shown; your feedback page lists their result]\n"


class ClearHiddenTestOutputs(NbGraderPreprocessor):
    begin_test_delimeter = Unicode("BEGIN HIDDEN TESTS", help="marks a hidden-test region").tag(config=True)

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type == "code" and self.begin_test_delimeter in cell.source:
            cell.outputs = [new_output("stream", name="stdout", text=HIDDEN_OUTPUT_NOTE)] if cell.outputs else []
        return cell, resources
