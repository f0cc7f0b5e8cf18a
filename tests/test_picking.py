"""Which notebook of a student's folder is graded (picking.pick_notebook)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from autograder.grading.picking import grade_ids_in, pick_notebook

SOURCE = Path(__file__).parent / "fixtures" / "grading" / "grading-fixture.ipynb"
IDS = grade_ids_in(SOURCE)


def _write(path: Path, data: str, age_s: float = 0.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data)
    t = 1_800_000_000 - age_s
    os.utime(path, (t, t))
    return path


def _untitled() -> str:
    return json.dumps(
        {
            "cells": [{"cell_type": "code", "source": "1 + 1", "metadata": {}, "outputs": [], "execution_count": None}],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )


def test_the_source_has_grade_ids():
    assert {"test_scale", "test_unit"} <= IDS


def test_the_expected_name_wins(tmp_path):
    expected = _write(tmp_path / "grading-fixture.ipynb", SOURCE.read_text(), age_s=100)
    _write(tmp_path / "Untitled.ipynb", _untitled())
    pick = pick_notebook(tmp_path, "grading-fixture", IDS)
    assert pick.path == expected and pick.note == "" and pick.name == "grading-fixture.ipynb"


def test_a_newer_untitled_notebook_does_not_displace_the_renamed_one(tmp_path):
    renamed = _write(tmp_path / "grading-fixture (1).ipynb", SOURCE.read_text(), age_s=3600)
    _write(tmp_path / "Untitled.ipynb", _untitled())
    pick = pick_notebook(tmp_path, "grading-fixture", IDS)
    assert pick.path == renamed
    assert "the notebook with the assignment's cells" in pick.note and "Untitled.ipynb" in pick.note


def test_two_candidates_are_a_stated_reason(tmp_path):
    _write(tmp_path / "copy-a.ipynb", SOURCE.read_text(), age_s=3600)
    newer = _write(tmp_path / "copy-b.ipynb", SOURCE.read_text())
    pick = pick_notebook(tmp_path, "grading-fixture", IDS)
    assert pick.path == newer
    assert pick.note.startswith("several candidate notebooks carry the assignment's cells (copy-a.ipynb, copy-b.ipynb)")
    assert pick.candidates == ("copy-a.ipynb", "copy-b.ipynb")


def test_no_candidate_carries_the_cells(tmp_path):
    _write(tmp_path / "a.ipynb", _untitled(), age_s=10)
    newest = _write(tmp_path / "b.ipynb", "{truncated")
    pick = pick_notebook(tmp_path, "grading-fixture", IDS)
    assert pick.path == newest and "none carries the assignment's cells" in pick.note
    only = tmp_path / "only"
    lone = _write(only / "notes.ipynb", _untitled())
    pick = pick_notebook(only, "grading-fixture", IDS)
    assert (
        pick.path == lone
        and pick.note == "graded notes.ipynb (no grading-fixture.ipynb): it carries none of the assignment's cells"
    )


def test_empty_and_absent_folders(tmp_path):
    assert pick_notebook(tmp_path / "nope", "grading-fixture", IDS).path is None
    (tmp_path / "empty").mkdir()
    assert pick_notebook(tmp_path / "empty", "grading-fixture", IDS).path is None
