"""The exercises' checks on known code (in-process, no sandbox): every correct style passes, every
classic bug fails with the message that names it. The sandbox itself is tested elsewhere."""

from __future__ import annotations

import contextlib
import io

import pytest
import torch

from grader_harness import grade_in_process
from grader_variants import BUGS, CFM_CORRECT, CORRECT, EULER_CORRECT, WEIGHTED_CORRECT
from straightline.grader import EXERCISES, UnknownExercise, get_exercise
from test_grader_meanflow import SOLUTION as MEANFLOW_SOLUTION, printed_numbers


@pytest.mark.parametrize(("exercise", "name", "code"), CORRECT, ids=[f"{e}-{n}" for e, n, _ in CORRECT])
def test_correct_solutions_in_any_style_pass(exercise: str, name: str, code: str) -> None:
    result = grade_in_process(exercise, code)
    assert result.status == "passed", result.message
    assert all(t.status == "passed" for t in result.tests)
    assert len(result.tests) == len(get_exercise(exercise).cases)


@pytest.mark.parametrize(("exercise", "name", "code", "fragment"), BUGS, ids=[f"{e}-{n}" for e, n, _, _ in BUGS])
def test_classic_bugs_fail_with_the_message_that_names_them(exercise: str, name: str, code: str, fragment: str) -> None:
    result = grade_in_process(exercise, code)
    assert result.status in ("failed", "syntax_error"), result.message
    assert result.counts_as_attempt
    assert fragment in result.message, result.message


def test_first_failure_is_reported_with_its_test_and_tests_stay_in_order() -> None:
    code = dict((n, c) for _, n, c, _ in BUGS)["t-once-per-batch"]
    result = grade_in_process("cfm_loss", code)
    assert [t.id for t in result.tests] == [c.id for c in get_exercise("cfm_loss").cases]
    first = result.first_failure
    assert first is not None and first.id == "batch-2d"
    assert result.message.startswith("Test 2 (hidden test: a batch of 2-D points [B, D]) failed.")
    assert result.tests[0].status == "passed"


def test_an_exception_is_reported_with_its_line() -> None:
    code = "import torch\n\ndef cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like):\n    x_0 = noise_fn(x_1)\n    return 1 / 0\n"
    result = grade_in_process("cfm_loss", code)
    assert result.line == 5
    assert "ZeroDivisionError at line 5" in result.message


def test_a_loss_off_by_an_unknown_factor_quotes_expected_and_got() -> None:
    code = CFM_CORRECT["view-star"].replace("return ((model", "return 1.7 * ((model")
    result = grade_in_process("cfm_loss", code)
    assert "should be 0.025" in result.message and "1.7 times that" in result.message


def test_weighted_example_matches_the_prompt_numbers() -> None:
    """The prompt's worked example: loss 0.025, weight 1/0.71 at t = 0.3: about 0.0352."""
    from straightline.grader.exercises.cfm_loss import _reference

    spec = {"kind": "constant", "shape": [1, 2], "values": [0.8, 1.9]}
    x_1, z, t = torch.tensor([[1.0, 2.0]], dtype=torch.float64), torch.zeros(1, 2, dtype=torch.float64), torch.tensor([0.3], dtype=torch.float64)
    assert float(_reference(spec, x_1, z, t, None)) == pytest.approx(0.025)
    assert float(_reference(spec, x_1, z, t, 1e-2)) == pytest.approx(0.025 / 0.71)
    assert round(0.025 / 0.71, 4) == 0.0352


def test_registry_names_hints_and_descriptions() -> None:
    assert list(EXERCISES) == ["cfm_loss", "weighted_cfm_loss", "euler_sample", "meanflow_target"]
    for name, ex in EXERCISES.items():
        assert ex.name == name and len(ex.hints) == 3 and all(h.strip() for h in ex.hints)
        assert ex.cases[0].visible and any(not c.visible for c in ex.cases)
        described = ex.describe()
        assert described["starter_code"] == ex.starter_code
        assert [t["id"] for t in described["tests"]] == [c.id for c in ex.cases]
    with pytest.raises(UnknownExercise, match="accepted: cfm_loss, weighted_cfm_loss, euler_sample, meanflow_target"):
        get_exercise("cfm")


@pytest.mark.parametrize("name", list(EXERCISES))
def test_starter_code_compiles_and_asks_to_be_replaced(name: str) -> None:
    result = grade_in_process(name, EXERCISES[name].starter_code)
    assert result.status == "failed"
    assert "NotImplementedError" in result.message and "starter code" in result.message


SOLUTIONS = {
    "cfm_loss": CFM_CORRECT["view-star"],
    "weighted_cfm_loss": WEIGHTED_CORRECT["per-example"],
    "euler_sample": EULER_CORRECT["full"],
    "meanflow_target": MEANFLOW_SOLUTION,
}


@pytest.mark.parametrize("name", list(EXERCISES))
def test_the_visible_example_code_runs_against_a_solution(name: str) -> None:
    namespace: dict = {}
    exec(compile(SOLUTIONS[name], "<solution>", "exec"), namespace)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(EXERCISES[name].example_code, "<example>", "exec"), namespace)
    text = out.getvalue()
    if name == "cfm_loss":
        assert "tensor(0.0250" in text
    elif name == "meanflow_target":
        values = printed_numbers(text)  # u's target minus u itself: zeros
        assert len(values) == 6 and max(abs(v) for v in values) < 1e-12
    elif name == "euler_sample":
        assert "[ 0.5000,  1.5000]" in text and "[ 0.7500,  1.7500]" in text
    else:
        first, second = (float(s.split("(")[1].split(")")[0].split(",")[0].strip("[]")) for s in text.split("tensor")[1:3])
        assert first == pytest.approx(second, rel=1e-5)
