"""`straightline grade EXERCISE FILE`: the report, and exit status 0 / 1 / 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grader_support import needs_bwrap
from grader_variants import CFM_BUGS, EULER_CORRECT
from straightline.cli import main


def test_unknown_exercise_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "s.py"
    f.write_text("")
    with pytest.raises(SystemExit) as exc:
        main(["grade", "cfm", str(f)])
    assert exc.value.code == 2
    assert "unknown exercise 'cfm'; accepted: cfm_loss, weighted_cfm_loss, euler_sample" in capsys.readouterr().err


@pytest.mark.parametrize("problem", ["missing", "directory", "binary"])
def test_unreadable_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str], problem: str) -> None:
    f = tmp_path / "s.py"
    if problem == "directory":
        f.mkdir()
    elif problem == "binary":
        f.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SystemExit) as exc:
        main(["grade", "euler_sample", str(f)])
    assert exc.value.code == 2
    assert str(f) in capsys.readouterr().err


def test_without_bubblewrap_the_cli_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "s.py"
    f.write_text(EULER_CORRECT["full"])
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["grade", "euler_sample", str(f)]) == 1
    err = capsys.readouterr().err
    assert "bubblewrap" in err and "--unsafe-local-grading" in err


@needs_bwrap
def test_passing_solution_exits_0_with_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "euler.py"
    f.write_text(EULER_CORRECT["full"] + "\nprint('hello from the solution')\n")
    assert main(["grade", "euler_sample", str(f)]) == 0
    out = capsys.readouterr().out
    assert "euler_sample: all 6 tests passed." in out
    assert "  PASS  1. a constant field v = 0.5, 4 steps: x_0 + 0.5 (example)" in out
    assert "hello from the solution" in out


@needs_bwrap
def test_failing_solution_exits_1_and_json_has_the_first_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "loss.py"
    f.write_text(CFM_BUGS["summed"][0])
    assert main(["grade", "cfm_loss", str(f), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "failed" and data["counts_as_attempt"] is True
    assert "summed" in data["message"] and data["tests"][0]["status"] == "failed"


def test_cli_exercise_names_match_the_registry():
    from straightline.cli_grade import EXERCISE_NAMES
    from straightline.grader import EXERCISES

    assert tuple(EXERCISES) == EXERCISE_NAMES
