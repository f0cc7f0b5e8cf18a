"""The grading policy stored in --out, the one published state, the resubmission policies and the limits checked
up front: unit tests, no notebook runs."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from autograder.grading import cli, policy, publish
from autograder.grading.records import GradeResult
from autograder.grading.resubmission import choose

SOURCE = Path(__file__).parent / "fixtures" / "grading" / "grading-fixture.ipynb"


# ------------------------------------------------------------------------------------------------ policy
def test_a_rerun_takes_the_stored_policy_and_a_change_needs_the_option(tmp_path):
    first, changes = policy.resolve(None, {"due": "2026-11-05T12:00Z", "late_penalty_per_hour": 10.0}, False)
    assert changes == [] and first.due == "2026-11-05T12:00Z" and first.timeout == policy.Policy().timeout
    policy.save(tmp_path, first)
    stored = policy.load(tmp_path)
    assert stored == first
    again, changes = policy.resolve(stored, {}, False)  # a rerun without --due keeps the due date and the penalty
    assert again == first and changes == []
    with pytest.raises(policy.PolicyError) as info:
        policy.resolve(stored, {"due": None, "export": ("canvas",)}, False)
    message = str(info.value)
    assert "\n" not in message and message.startswith("--due none differs from this output folder's grading policy")
    assert "(and 1 more)" in message and "--change-policy" in message
    changed, changes = policy.resolve(stored, {"due": None, "late_penalty_per_hour": 0.0}, True)
    assert changed.due is None and policy.describe_changes(changes) == (
        "grading policy changed: --due 2026-11-05T12:00Z -> none; --late-penalty-per-hour 10 -> 0"
    )


def test_the_command_line_options_are_read_as_policy(tmp_path):
    args = cli._parser().parse_args(
        ["s", "--assignment", "a", "--out", "o", "--due", "none", "--export", "none", "--roster", "r.csv"]
    )
    given = cli._given_policy(args)
    assert given == {"due": None, "export": (), "roster": str(Path("r.csv").resolve())}
    assert cli._given_policy(cli._parser().parse_args(["s", "--assignment", "a", "--out", "o"])) == {}


def test_too_little_memory_is_a_one_line_usage_error_with_the_measured_minimum(tmp_path, capsys):
    (tmp_path / "sub" / "ann" / "grading-fixture").mkdir(parents=True)
    code = cli.main(
        [
            str(tmp_path / "sub"),
            "--assignment",
            "grading-fixture",
            "--out",
            str(tmp_path / "out"),
            "--source",
            str(SOURCE),
            "--memory",
            "0.01",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err, err
    assert err.startswith("error: --memory 0.01 GiB is too small to grade anything:") and "GiB of address space" in err
    minimum = float(err.rsplit("give --memory ", 1)[1].split()[0])
    assert 0.01 < minimum < policy.Policy().memory  # measured: more than nothing, less than the default
    assert policy.memory_problem(minimum, SOURCE.read_bytes()) is None
    assert not (tmp_path / "out" / "grades.csv").exists()


def test_a_kernels_modules_come_from_the_source():
    assert policy.kernel_modules(SOURCE.read_bytes()) == ["autograder.student", "ipykernel.kernelapp", "numpy"]


# ------------------------------------------------------------------------------------------------ publishing
def _published(out: Path) -> dict[str, str]:
    return {
        str(p.relative_to(out)): p.read_text()
        for p in sorted(out.rglob("*"))
        if p.is_file() and ".autograder" not in p.parts
    }


def test_staged_outputs_replace_the_published_ones_and_unasked_outputs_go(tmp_path):
    out = tmp_path / "out"
    (out / "feedback" / "ann").mkdir(parents=True)
    (out / "feedback" / "ann" / "a.html").write_text("old page")
    (out / "grades.csv").write_text("old")
    (out / "canvas.csv").write_text("old export")
    (out / "gradebook.db").write_text("the gradebook is not an output")
    staging = publish.Staging(out)
    (staging.path("feedback", "ann")).mkdir(parents=True)
    staging.path("feedback", "ann", "a.html").write_text("new page")
    staging.path("grades.csv").write_text("new")
    assert _published(out)["grades.csv"] == "old"  # nothing visible before publishing
    assert staging.publish() == ["feedback", "grades.csv"]
    assert _published(out) == {
        "feedback/ann/a.html": "new page",
        "grades.csv": "new",
        "gradebook.db": "the gradebook is not an output",
    }


def test_a_run_killed_before_or_during_the_swap_leaves_one_complete_state(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "grades.csv").write_text("old")
    (out / "report.html").write_text("old report")
    staging = publish.Staging(out)
    staging.path("grades.csv").write_text("new")
    staging.path("report.html").write_text("new report")
    publish.recover(out)  # killed before the journal: the staging folder is dropped, the old state stays
    assert _published(out) == {"grades.csv": "old", "report.html": "old report"}
    staging = publish.Staging(out)
    staging.path("grades.csv").write_text("new")
    staging.path("report.html").write_text("new report")
    journal = out / ".autograder" / "publish.json"  # killed after the journal, halfway through the swap
    journal.write_text(json.dumps({"present": ["grades.csv", "report.html"]}))
    (out / "grades.csv").replace(out / ".autograder" / "old-grades")
    staging.path("grades.csv").replace(out / "grades.csv")
    publish.recover(out)  # the next run finishes it
    assert _published(out) == {"grades.csv": "new", "report.html": "new report"}
    assert not journal.exists() and not (out / ".autograder" / "staging").exists()


# ------------------------------------------------------------------------------------------------ resubmissions
def _result(student: str, score: float | None, digest: str, status: str = "graded") -> GradeResult:
    return GradeResult(student, "a", status, score, 10.0, submission_hash=digest)


DUE = dt.datetime(2026, 11, 5, 12, 0)


def _final(result, when):
    if result.score is None:
        return None
    late = when is not None and when > DUE
    return result.score - (5.0 if late else 0.0)


def _on_time(when):
    return when <= DUE


@pytest.mark.parametrize(
    "name, expected, note",
    [
        ("latest", 6.0, "latest of 3 submissions graded"),
        (
            "best",
            8.0,
            "best of 3: kept the submission of 2026-11-05 11:00 UTC (8) over the latest, of 2026-11-05 14:00 UTC (1)",
        ),
        (
            "latest-on-time",
            7.0,
            "latest-on-time of 3: kept the submission of 2026-11-05 11:30 UTC (7) over the "
            "latest, of 2026-11-05 14:00 UTC (1)",
        ),
    ],
)
def test_each_resubmission_policy_says_what_it_kept(name, expected, note):
    early = (_result("ann", 8.0, "h1"), dt.datetime(2026, 11, 5, 11, 0))
    later = (_result("ann", 7.0, "h2"), dt.datetime(2026, 11, 5, 11, 30))
    late = _result("ann", 6.0, "h3")  # the notebook in SUBMISSIONS now, 2 hours late: 6 - 5 = 1
    choice = choose(name, late, dt.datetime(2026, 11, 5, 14, 0), [early, later], _final, _on_time)
    assert choice.result.score == expected and choice.note == note
    assert choice.replaced_latest == (name != "latest")


def test_a_crashed_resubmission_keeps_the_graded_one_under_best():
    old = (_result("bob", 4.0, "h1"), dt.datetime(2026, 11, 5, 11, 0))
    crashed = _result("bob", None, "h2", status="crashed")
    assert choose("best", crashed, dt.datetime(2026, 11, 5, 11, 30), [old], _final, _on_time).result.score == 4.0
    assert choose("latest", crashed, None, [old], _final, _on_time).result.status == "crashed"
