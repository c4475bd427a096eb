"""What each learner action does to an element's state, and how states read as progress.

An element's state is a small JSON object stored per learner (see `store.py`); this module is the
only place that knows its shape per element type:

    check        {"chosen": 1..4, "correct": bool, "attempts": int, "solved": bool}
    checkpoint   {"answer": str, "words": int, "rating": "got" | "partly" | "missed" | None},
                 or {"skipped": true} (status "started") once the learner chose to move on
                 without answering: the gate no longer holds them, but it is not cleared
    derivation   {"hints": 0..3, "solution": bool}
    adversarial  {"answer": str, "words": int}
    design       {"answers": {"1".."4": str}, "design": bool}
    build-it     {"attempts": int, "passed": bool, "code": str, "result": {...} | None,
                  "passed_code": str | None, "run": {...} | None}
                 `code` and `result`: the last submission and its grade (the grader's
                 GradeResult.to_dict()); `passed_code`: the latest passing submission, the one
                 "run it in the simulation" runs; `run`: the last run's summary numbers
    predict      {"guess": str}: an outcome of the rule, or "x,y" (predictions.py); final once
                 committed (status "done")

`apply(element, action, form, state)` validates the form fields and returns a `Change` (new state,
status, attempts to record) or raises `InputError` naming the field, what was wrong and what is
accepted. Statuses: "started" (touched, not finished) and "done" (check answered correctly,
gate cleared, derivation's full solution opened, explanation committed, reference design revealed,
a Build-It submission passed).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import predictions
from .content import DEFAULT_MIN_WORDS, Chapter, Course, Element
from .store import Change, ElementState

__all__ = [
    "ACTIONS",
    "ATTEMPT_KINDS",
    "AVAILABLE_TYPES",
    "COMING_WITH",
    "ChapterProgress",
    "InputError",
    "MAX_ANSWER_CHARS",
    "MAX_CODE_CHARS",
    "RATINGS",
    "apply",
    "chapter_progress",
    "course_progress",
    "describe",
    "distinct_words",
    "gate_passed",
    "locks",
    "open_gates",
    "validate_state",
    "word_count",
]

#: Interactive types whose machinery exists in this version (they count towards progress).
AVAILABLE_TYPES = ("check", "checkpoint", "derivation", "adversarial", "design", "build-it", "predict")

#: Which issue brings the machinery of the element types that only show a placeholder today.
#: (Simulations and Break-It labs exist; like the reading, they are explored, not tracked.)
COMING_WITH = {
    "experiment": "the advanced-toolkit issue",
}

RATINGS = {"got": "got it", "partly": "partly", "missed": "missed it"}
MAX_ANSWER_CHARS = 20_000
ADVERSARIAL_MIN_WORDS = 8
DESIGN_MIN_WORDS = 5
DERIVATION_STEPS = ("hint-1", "hint-2", "hint-3", "solution")


class InputError(ValueError):
    """A refused action: `field` names the form field; `status` is the HTTP status to answer with."""

    def __init__(self, field: str, message: str, *, accepted: str | None = None, status: int = 422):
        self.field, self.message, self.accepted, self.status = field, message, accepted, status
        super().__init__(f"{field}: {message}" + (f" (accepted: {accepted})" if accepted else ""))


def word_count(text: str) -> int:
    return len(re.findall(r"[^\W_]+(?:['’_-][^\W_]+)*", text))


def _field(form: Mapping[str, Any], name: str, accepted: str) -> str:
    value = form.get(name)
    if value is None:  # a form field sent empty reaches us as None too
        raise InputError(name, f"the field {name!r} is missing or empty", accepted=accepted)
    if not isinstance(value, str):
        raise InputError(name, f"the field {name!r} must be text", accepted=accepted)
    return value


def _choice(form: Mapping[str, Any], name: str, choices: tuple[str, ...]) -> str:
    accepted = ", ".join(choices)
    value = _field(form, name, accepted).strip()
    if value not in choices:
        shown = value if len(value) <= 40 else value[:40] + "…"
        raise InputError(name, f"{name} must be one of {accepted}; got {shown!r}", accepted=accepted)
    return value


def _text(form: Mapping[str, Any], name: str, min_words: int) -> tuple[str, int]:
    accepted = f"at least {min_words} words, at most {MAX_ANSWER_CHARS} characters"
    if form.get(name) is None:
        raise InputError(name, f"the answer is empty: write at least {min_words} words in your own words", accepted=accepted)
    text = _field(form, name, accepted).replace("\r\n", "\n").strip()
    if len(text) > MAX_ANSWER_CHARS:
        raise InputError(name, f"your answer has {len(text)} characters; the limit is {MAX_ANSWER_CHARS}", accepted=accepted)
    words = word_count(text)
    if not text:
        raise InputError(name, f"the answer is empty: write at least {min_words} words in your own words", accepted=accepted)
    if words < min_words:
        raise InputError(
            name,
            f"your answer has {words} word{'s' if words != 1 else ''}; write at least {min_words} "
            "so there is a real attempt to compare with the model answer",
            accepted=accepted,
        )
    return text, words


# --- actions ------------------------------------------------------------------------------------

Action = Callable[[Element, Mapping[str, Any], dict[str, Any] | None], Change]


def _check_answer(element: Element, form: Mapping[str, Any], state: dict[str, Any] | None) -> Change:
    n = len(element.html["options"])
    option = int(_choice(form, "option", tuple(str(i) for i in range(1, n + 1))))
    correct = bool(element.html["options"][option - 1]["correct"])
    old = state or {}
    solved = bool(old.get("solved")) or correct
    new = {"chosen": option, "correct": correct, "attempts": int(old.get("attempts", 0)) + 1, "solved": solved}
    return Change(new, "done" if solved else "started", [("check", {"option": option, "correct": correct})])


def distinct_words(text: str) -> set[str]:
    """The different words of a text, case folded ("Blah blah" has one)."""
    return {w.casefold() for w in re.findall(r"[^\W_]+(?:['’_-][^\W_]+)*", text)}


def _checkpoint_answer(element: Element, form: Mapping[str, Any], state: dict[str, Any] | None) -> Change:
    min_words = int(element.fields.get("min_words", DEFAULT_MIN_WORDS))
    text, words = _text(form, "answer", min_words)
    different, needed = len(distinct_words(text)), (min_words + 1) // 2
    if different < needed:
        raise InputError(
            "answer",
            f"your answer has {words} words but only {different} different one{'s' if different != 1 else ''}; "
            f"a repeated word is not an explanation: write at least {needed} different words in sentences of your own",
            accepted=f"at least {min_words} words, at least {needed} of them different",
        )
    return Change({"answer": text, "words": words, "rating": None}, "done", [("checkpoint-answer", {"text": text, "words": words})])


def _checkpoint_skip(element: Element, form: Mapping[str, Any], state: dict[str, Any] | None) -> Change:
    if state and state.get("answer"):
        raise InputError("skip", "this checkpoint is already cleared: there is nothing to skip", status=409)
    return Change({"skipped": True}, "started", [("checkpoint-skip", {})])


def _checkpoint_rating(element: Element, form: Mapping[str, Any], state: dict[str, Any] | None) -> Change:
    rating = _choice(form, "rating", tuple(RATINGS))
    if not state or not state.get("answer"):
        raise InputError("rating", "answer the checkpoint before rating your answer against the model answer", status=409)
    return Change({**state, "rating": rating}, "done", [("checkpoint-rating", {"rating": rating})])


def _derivation_reveal(element: Element, form: Mapping[str, Any], state: dict[str, Any] | None) -> Change:
    step = _choice(form, "reveal", DERIVATION_STEPS)
    old = state or {"hints": 0, "solution": False}
    hints, solution = int(old.get("hints", 0)), bool(old.get("solution", False))
    if step == "solution":
        solution = True
        attempt = ("derivation-solution", {})
    else:
        k = int(step.rsplit("-", 1)[1])
        if k > hints + 1:
            raise InputError(
                "reveal", f"hints open one at a time: the next one is hint-{hints + 1}, not {step}",
                accepted=", ".join(DERIVATION_STEPS[hints : hints + 1] + ("solution",)), status=409,
            )
        hints = max(hints, k)
        attempt = ("derivation-hint", {"hint": k})
    return Change({"hints": hints, "solution": solution}, "done" if solution else "started", [attempt])


def _adversarial_answer(element: Element, form: Mapping[str, Any], state: dict[str, Any] | None) -> Change:
    text, words = _text(form, "answer", ADVERSARIAL_MIN_WORDS)
    return Change({"answer": text, "words": words}, "done", [("adversarial-answer", {"text": text, "words": words})])


def _design_answer(element: Element, form: Mapping[str, Any], state: dict[str, Any] | None) -> Change:
    n = len(element.html["questions"])
    question = _choice(form, "question", tuple(str(i) for i in range(1, n + 1)))
    text, words = _text(form, "answer", DESIGN_MIN_WORDS)
    old = state or {"answers": {}, "design": False}
    answers = {**old.get("answers", {}), question: text}
    design = bool(old.get("design", False))
    return Change(
        {"answers": answers, "design": design},
        "done" if design else "started",
        [("design-answer", {"question": int(question), "text": text})],
    )


def _design_reveal(element: Element, form: Mapping[str, Any], state: dict[str, Any] | None) -> Change:
    n = len(element.html["questions"])
    answers = (state or {}).get("answers", {})
    missing = [str(i) for i in range(1, n + 1) if str(i) not in answers]
    if missing:
        raise InputError(
            "reveal",
            f"answer every question before the reference design: question(s) {', '.join(missing)} still open",
            status=409,
        )
    return Change({"answers": answers, "design": True}, "done", [("design-reveal", {})])


#: Build-It: the largest code kept (the submission route's body limit), and statuses of a grade / a run.
MAX_CODE_CHARS = 256 * 1024
SUBMISSION_STATUSES = ("passed", "failed", "syntax_error", "timeout", "infrastructure_error")
RUN_STATUSES = ("ok", "error", "timeout", "infrastructure_error")


def _code_field(form: Mapping[str, Any]) -> str:
    code = form.get("code")
    if not isinstance(code, str):
        raise InputError("code", "the field 'code' is missing: send your code in it", accepted="Python source text")
    if len(code) > MAX_CODE_CHARS:
        raise InputError("code", f"your code has {len(code)} characters; the limit is {MAX_CODE_CHARS}", status=413)
    return code


def _build_it_state(state: dict[str, Any] | None) -> dict[str, Any]:
    return {"attempts": 0, "passed": False, "code": "", "result": None, "passed_code": None, "run": None, **(state or {})}


def _submission_grade(form: Mapping[str, Any]) -> dict[str, Any]:
    """The grade (GradeResult.to_dict()) of a submission form; InputError unless its status is known."""
    result = form.get("result")
    if not isinstance(result, dict) or result.get("status") not in SUBMISSION_STATUSES:
        raise InputError("result", "a submission needs its grade", accepted=", ".join(SUBMISSION_STATUSES))
    return result


def _build_it_submission(element: Element, form: Mapping[str, Any], state: dict[str, Any] | None) -> Change:
    """Record a graded submission: form = {"code": str, "result": GradeResult.to_dict()}.

    An infrastructure failure (`counts_as_attempt` false) is recorded, and shown, but does not
    count as an attempt and changes neither `attempts` nor `passed`.
    """
    code = _code_field(form)
    result = _submission_grade(form)
    counts = bool(result.get("counts_as_attempt", True))
    old = _build_it_state(state)
    passed_now = result["status"] == "passed"
    new = {
        **old,
        "attempts": int(old["attempts"]) + (1 if counts else 0),
        "passed": bool(old["passed"]) or passed_now,
        "code": code,
        "result": result,
        "passed_code": code if passed_now else old["passed_code"],
    }
    payload = {"code": code, "result": result, "counts": counts}
    return Change(new, "done" if new["passed"] else "started", [("submission", payload)])


def _build_it_run(element: Element, form: Mapping[str, Any], state: dict[str, Any] | None) -> Change:
    """Record a "run it in the simulation": form = {"run": RunResult.summary()}."""
    old = _build_it_state(state)
    if not old["passed"] or not old["passed_code"]:
        raise InputError("run", "pass the tests first: the simulation runs your passing solution", status=409)
    run = form.get("run")
    if not isinstance(run, dict) or run.get("status") not in RUN_STATUSES:
        raise InputError("run", "a run needs its result", accepted=", ".join(RUN_STATUSES))
    return Change({**old, "run": run}, "done", [("run", run)])


def _predict_guess(element: Element, form: Mapping[str, Any], state: dict[str, Any] | None) -> Change:
    """Commit a guess before the simulation plays: form = {"guess": outcome or "x,y"}."""
    rule = predictions.RULES[element.fields["rule"]]
    accepted = "one of " + ", ".join(o["outcome"] for o in element.html["options"]) if rule.kind == "choice" else "x,y"
    raw = _field(form, "guess", accepted)
    if state and state.get("guess"):
        raise InputError("guess", f"your prediction ({state['guess']}) is already committed; it cannot change", status=409)
    try:
        guess = predictions.parse_guess(rule, element.html["options"], raw)
    except ValueError as exc:
        raise InputError("guess", str(exc), accepted=accepted) from None
    return Change({"guess": guess}, "done", [("prediction", {"guess": guess})])


#: (element type, action name) -> the function that applies it.
ACTIONS: dict[tuple[str, str], Action] = {
    ("check", "answer"): _check_answer,
    ("checkpoint", "answer"): _checkpoint_answer,
    ("checkpoint", "rating"): _checkpoint_rating,
    ("checkpoint", "skip"): _checkpoint_skip,
    ("derivation", "reveal"): _derivation_reveal,
    ("adversarial", "answer"): _adversarial_answer,
    ("design", "answer"): _design_answer,
    ("design", "reveal"): _design_reveal,
    ("build-it", "submission"): _build_it_submission,
    ("build-it", "run"): _build_it_run,
    ("predict", "guess"): _predict_guess,
}


def apply(element: Element, action: str, form: Mapping[str, Any], state: dict[str, Any] | None) -> Change:
    """The change `action` makes to `element` given the learner's `state`; raises InputError."""
    fn = ACTIONS.get((element.type, action))
    if fn is None:  # the routes only call known pairs
        raise InputError("action", f"{element.type} elements have no action {action!r}", status=404)
    return fn(element, form, state)


# --- reading states -----------------------------------------------------------------------------

def gate_passed(state: ElementState | None) -> bool:
    """A checkpoint the learner cleared (answered) or explicitly skipped."""
    return state is not None and (state.status == "done" or bool(state.state.get("skipped")))


def locks(chapter: Chapter, states: Mapping[str, ElementState]) -> dict[str, Element]:
    """Interactive elements that come after a checkpoint the learner has neither cleared nor
    skipped -> that gate.

    Only elements whose machinery exists (AVAILABLE_TYPES) lock; placeholders stay as they are.
    """
    locked: dict[str, Element] = {}
    gate: Element | None = None
    for element in chapter.elements:
        if gate is not None and element.type in AVAILABLE_TYPES:
            locked[element.id] = gate
        if element.type == "checkpoint" and gate is None and not gate_passed(states.get(element.id)):
            gate = element
    return locked


def open_gates(course: Course, chapter: Chapter, states: Mapping[str, ElementState]) -> list[tuple[Chapter, Element]]:
    """Checkpoints of the chapters before `chapter` that are neither cleared nor skipped."""
    return [
        (earlier, element)
        for earlier in course.chapters[: course.chapters.index(chapter)]
        for element in earlier.elements
        if element.type == "checkpoint" and not gate_passed(states.get(element.id))
    ]


def describe(element: Element, state: ElementState | None) -> str:
    """A short human description of a learner's state for an element."""
    if element.type not in AVAILABLE_TYPES:
        if element.type in COMING_WITH:
            return f"coming with {COMING_WITH[element.type]}"
        return "to explore (not tracked)"
    if state is None:
        return "not started"
    s = state.state
    if element.type == "check":
        tries = s.get("attempts", 1)
        tries_text = f"{tries} attempt{'s' if tries != 1 else ''}"
        if s.get("solved"):
            return f"answered correctly ({tries_text})"
        return f"answered, not yet correct ({tries_text})"
    if element.type == "checkpoint":
        if s.get("skipped"):
            return "skipped, not answered"
        rating = s.get("rating")
        return "gate cleared" + (f", self-rated: {RATINGS[rating]}" if rating in RATINGS else ", not yet self-rated")
    if element.type == "derivation":
        if s.get("solution"):
            return "attempted, full derivation opened"
        k = s.get("hints", 0)
        return f"attempted, {k} of 3 hints opened"
    if element.type == "adversarial":
        return "explanation committed and revealed"
    if element.type == "design":
        if s.get("design"):
            return "all questions answered, reference design revealed"
        return f"{len(s.get('answers', {}))} of 4 questions answered"
    if element.type == "predict":
        return "prediction committed, answer revealed"
    if element.type == "build-it":
        n = int(s.get("attempts", 0))
        tries = f"{n} attempt{'s' if n != 1 else ''}"
        if s.get("passed"):
            return f"passed ({tries})"
        if n == 0:
            return "not graded yet"
        return f"attempted, not passing yet ({tries})"
    return state.status


@dataclass(frozen=True)
class ChapterProgress:
    done: int
    total: int  # interactive elements available in this version
    gates: int
    gates_cleared: int

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0

    @property
    def complete(self) -> bool:
        return self.total > 0 and self.done == self.total


def chapter_progress(chapter: Chapter, states: Mapping[str, ElementState]) -> ChapterProgress:
    elements = [e for e in chapter.elements if e.type in AVAILABLE_TYPES]
    done = sum(1 for e in elements if (st := states.get(e.id)) is not None and st.status == "done")
    gates = [e for e in elements if e.type == "checkpoint"]
    cleared = sum(1 for e in gates if (st := states.get(e.id)) is not None and st.status == "done")
    return ChapterProgress(done, len(elements), len(gates), cleared)


def course_progress(course: Course, states: Mapping[str, ElementState]) -> ChapterProgress:
    parts = [chapter_progress(c, states) for c in course.chapters]
    return ChapterProgress(*(sum(getattr(p, f) for p in parts) for f in ("done", "total", "gates", "gates_cleared")))


# --- validating stored/imported states ----------------------------------------------------------

def _is_int(value: Any, lo: int, hi: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_ANSWER_CHARS


#: What each stored state key must hold: key -> (predicate, description of accepted values).
_Expected = dict[str, tuple[Callable[[Any], bool], str]]
#: A type's expected keys, the status its state implies, and a cross-key problem (or None).
_Shape = tuple[_Expected, str, str | None]


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _check_shape(state: dict) -> _Shape:
    expected: _Expected = {
        "chosen": (lambda v: _is_int(v, 1, 4), "an integer in 1..4"),
        "correct": (_is_bool, "true or false"),
        "attempts": (lambda v: _is_int(v, 1, 10**9), "a positive integer"),
        "solved": (_is_bool, "true or false"),
    }
    return expected, "done" if state.get("solved") else "started", None


def _checkpoint_shape(state: dict) -> _Shape:
    if "skipped" in state:
        return {"skipped": (lambda v: v is True, "true (a skipped gate)")}, "started", None
    expected: _Expected = {
        "answer": (_is_text, f"text of 1..{MAX_ANSWER_CHARS} characters"),
        "words": (lambda v: _is_int(v, 0, MAX_ANSWER_CHARS), "a word count"),
        "rating": (lambda v: v is None or v in RATINGS, f"null or one of {', '.join(RATINGS)}"),
    }
    return expected, "done", None


def _derivation_shape(state: dict) -> _Shape:
    expected: _Expected = {
        "hints": (lambda v: _is_int(v, 0, 3), "an integer in 0..3"),
        "solution": (_is_bool, "true or false"),
    }
    return expected, "done" if state.get("solution") else "started", None


def _adversarial_shape(state: dict) -> _Shape:
    expected: _Expected = {
        "answer": (_is_text, f"text of 1..{MAX_ANSWER_CHARS} characters"),
        "words": (lambda v: _is_int(v, 0, MAX_ANSWER_CHARS), "a word count"),
    }
    return expected, "done", None


def _is_short_code(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= MAX_CODE_CHARS


def _build_it_shape(state: dict) -> _Shape:
    expected: _Expected = {
        "attempts": (lambda v: _is_int(v, 0, 10**9), "a non-negative integer"),
        "passed": (_is_bool, "true or false"),
        "code": (_is_short_code, f"text of at most {MAX_CODE_CHARS} characters"),
        "result": (
            lambda v: v is None or (isinstance(v, dict) and v.get("status") in SUBMISSION_STATUSES),
            f"null or a grade with a status in {', '.join(SUBMISSION_STATUSES)}",
        ),
        "passed_code": (
            lambda v: v is None or _is_short_code(v),
            f"null or text of at most {MAX_CODE_CHARS} characters",
        ),
        "run": (
            lambda v: v is None or (isinstance(v, dict) and v.get("status") in RUN_STATUSES),
            f"null or a run with a status in {', '.join(RUN_STATUSES)}",
        ),
    }
    problem = None
    if state.get("passed") and not state.get("passed_code"):
        problem = "a passed build-it needs its passing code (passed_code)"
    return expected, "done" if state.get("passed") else "started", problem


def _design_shape(state: dict) -> _Shape:
    expected: _Expected = {
        "answers": (
            lambda v: isinstance(v, dict) and set(v) <= {"1", "2", "3", "4"} and all(map(_is_text, v.values())),
            "an object mapping '1'..'4' to answer texts",
        ),
        "design": (_is_bool, "true or false"),
    }
    problem = None
    if state.get("design") and isinstance(state.get("answers"), dict) and len(state["answers"]) != 4:
        problem = "design is revealed only after all 4 answers"
    return expected, "done" if state.get("design") else "started", problem


def _predict_shape(state: dict) -> _Shape:
    expected: _Expected = {"guess": (lambda v: isinstance(v, str) and 0 < len(v) <= 40, "a committed guess (text of 1..40 characters)")}
    return expected, "done", None


_STATE_SHAPES: dict[str, Callable[[dict], _Shape]] = {
    "check": _check_shape,
    "checkpoint": _checkpoint_shape,
    "derivation": _derivation_shape,
    "adversarial": _adversarial_shape,
    "build-it": _build_it_shape,
    "design": _design_shape,
    "predict": _predict_shape,
}


def _key_problem(state: dict, expected: _Expected) -> str | None:
    """What is wrong with the state's keys or values against `expected`, or None."""
    unknown = sorted(set(state) - set(expected))
    if unknown:
        return f"state has unknown key(s) {unknown} (accepted: {', '.join(expected)})"
    for key, (ok, what) in expected.items():
        if key not in state:
            return f"state lacks {key!r} ({what})"
        if not ok(state[key]):
            shown = repr(state[key])
            return f"state.{key} must be {what}, got {shown[:60]}"
    return None


def validate_state(element_type: str, status: Any, state: Any) -> str | None:
    """None if (status, state) is a state this version can hold for the type; else what is wrong."""
    if element_type not in AVAILABLE_TYPES:
        return f"type {element_type!r} has no progress in this version (accepted: {', '.join(AVAILABLE_TYPES)})"
    if status not in ("started", "done"):
        return f"status must be 'started' or 'done', got {status!r}"
    if not isinstance(state, dict):
        return f"state must be an object, got {type(state).__name__}"
    expected, want, problem = _STATE_SHAPES[element_type](state)
    problem = problem or _key_problem(state, expected)
    if problem:
        return problem
    if status != want:
        return f"status must be {want!r} for this state, got {status!r}"
    return None


#: Attempt kinds each element type records (used to validate imports).
ATTEMPT_KINDS: dict[str, tuple[str, ...]] = {
    "check": ("check", "review-check"),
    "checkpoint": ("checkpoint-answer", "checkpoint-rating", "checkpoint-skip", "review-checkpoint", "review-rating"),
    "derivation": ("derivation-hint", "derivation-solution"),
    "adversarial": ("adversarial-answer",),
    "design": ("design-answer", "design-reveal"),
    "build-it": ("submission", "run"),
    "predict": ("prediction",),
}
