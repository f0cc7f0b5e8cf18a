"""The roster file and the Canvas export."""

from __future__ import annotations

import csv

import pytest

from autograder.grading.lateness import Lateness
from autograder.grading.lms_export import CANVAS_HEADER, write_canvas
from autograder.grading.roster import RosterError, read_roster
from autograder.grading.scores import GradebookView, build_row
from autograder.grading.tasks import GradeResult


def _row(student, status, score):
    result = GradeResult(student, "a1", status, score, 10.0, "")
    return build_row(result, GradebookView(), lambda raw: Lateness(None, None, None))


def test_roster_reads_names_emails_sections_and_nbgrader_columns(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_text(
        "ID,First Name,Last Name,Email,Section,SIS Login ID\nann,Ann,Lee,ann@uni.edu,A1,alee\n\nbob,,,bob@uni.edu,,\n",
        encoding="utf-8-sig",
    )
    roster = read_roster(path)
    assert list(roster) == ["ann", "bob"]
    assert roster["ann"].name == "Lee, Ann" and roster["ann"].section == "A1" and roster["ann"].sis_login_id == "alee"
    assert roster.person("zed").id == "zed" and roster.missing(["ann", "zed"]) == ["zed"]
    assert read_roster(None).missing(["ann"]) == []


@pytest.mark.parametrize(
    "text, words",
    [
        ("", "the file is empty"),
        ("name,email\nAnn,a@x\n", "has no id column"),
        ("id,name\nann,Ann\nann,Again\n", "line 3 repeats the id 'ann'"),
        ("id,name\n,Nobody\n", "line 2 has an empty id"),
    ],
)
def test_bad_rosters_are_one_line_errors(tmp_path, text, words):
    path = tmp_path / "r.csv"
    path.write_text(text)
    with pytest.raises(RosterError, match=words) as info:
        read_roster(path)
    assert "\n" not in str(info.value)
    with pytest.raises(RosterError, match="no such file"):
        read_roster(tmp_path / "nope.csv")


def test_canvas_export_header_ids_and_blank_missing_work(tmp_path):
    roster_path = tmp_path / "roster.csv"
    roster_path.write_text(
        "id,name,email,section,canvas_id\nann,Ann Lee,ann@uni.edu,A1,1001\ndan,Dan Roe,dan@uni.edu,A2,1004\n"
    )
    roster = read_roster(roster_path)
    rows = [_row("ann", "graded", 7.5), _row("bob", "crashed", None), _row("cy", "missing", None)]
    path = write_canvas(tmp_path, rows, roster, "Token embeddings (555)")
    with open(path, newline="") as fh:
        lines = list(csv.reader(fh))
    assert lines[0] == CANVAS_HEADER + ["Token embeddings (555)"]
    assert CANVAS_HEADER == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    body = {line[2]: line for line in lines[1:]}
    assert body["ann"] == ["Ann Lee", "1001", "ann", "ann@uni.edu", "A1", "7.5"]
    assert body["dan"] == ["Dan Roe", "1004", "dan", "dan@uni.edu", "A2", ""]  # on the roster, no folder: blank
    assert body["bob"] == ["bob", "", "bob", "", "", ""]  # crashed: blank, not 0
    assert body["cy"][-1] == ""  # missing: blank, not 0
    assert [line[2] for line in lines[1:]] == ["ann", "dan", "bob", "cy"]


def test_a_roster_that_is_not_utf8_says_to_save_it_as_utf8(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_bytes("id,name\nann,Ren\u00e9e\n".encode("latin-1"))  # what Excel's plain "CSV" writes on Windows
    with pytest.raises(RosterError) as info:
        read_roster(path)
    message = str(info.value)
    assert "\n" not in message and "not UTF-8 text (byte 0xe9 on line 2)" in message and "save it as UTF-8" in message


CANVAS_EXPORT = (
    "Student,ID,SIS User ID,SIS Login ID,Section,Token embeddings (123456)\n"
    "    Points Possible,,,,,17.00\n"
    '"Lee, Ann",1001,S001,ann,S1,\n'
    '"Ray, Bob",1002,S002,bob,S2,12\n'
    '"Student, Test",1003,,,S1,\n'
)


def test_canvas_gradebook_export_is_a_roster_and_round_trips(tmp_path):
    path = tmp_path / "Grades-TOK101.csv"
    path.write_text(CANVAS_EXPORT, encoding="utf-8")
    roster = read_roster(path, students=["ann", "bob", "cy"])
    assert list(roster) == ["ann", "bob"]  # no "Points Possible" line, no test student
    assert roster["ann"].name == "Lee, Ann" and roster["ann"].canvas_id == "1001"
    assert roster["bob"].sis_user_id == "S002" and roster["bob"].section == "S2"
    out = write_canvas(tmp_path, [_row("ann", "graded", 7.5), _row("cy", "graded", 3.0)], roster, "Token embeddings")
    with open(out, newline="") as fh:
        body = {line[0]: line for line in list(csv.reader(fh))[1:]}
    assert body["Lee, Ann"] == ["Lee, Ann", "1001", "S001", "ann", "S1", "7.5"]  # Canvas' own ids back to Canvas
    with pytest.raises(RosterError, match="none of its id columns"):
        read_roster(path, students=["zed"])
