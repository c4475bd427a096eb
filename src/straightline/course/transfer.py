"""Export and import a learner's progress as JSON (a versioned format).

    {
      "format": "straightline-progress",
      "version": 1,
      "exported_at": "2025-01-31T12:00:00+00:00",
      "elements": [{"id": "c0-what-is-v", "type": "check", "status": "done",
                    "state": {...}, "updated_at": "..."}],
      "attempts": [{"element": "c0-what-is-v", "type": "check", "kind": "check",
                    "payload": {...}, "at": "..."}]
    }

`parse_import` validates a whole file before anything is written and raises `ImportFileError` with
the JSON path of the first problem (e.g. `elements[2].state.chosen must be an integer in 1..4,
got 7`). Elements the current course does not have are kept (a newer or older course version may
have them) but must still be well formed; an element the course has must have the course's type.
The file must be UTF-8 JSON without NaN or Infinity, nested at most `texthygiene.MAX_DEPTH` levels,
with no U+0000 or lone surrogate in any text (`texthygiene.loads_strict`), and `version` must be the
integer 1 (not 1.0 or true).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .content import Course
from .progress import ATTEMPT_KINDS, AVAILABLE_TYPES, validate_state
from .store import Attempt, ElementState
from .texthygiene import JsonProblem, loads_strict

__all__ = ["FORMAT", "VERSION", "ImportFileError", "ImportPlan", "export_progress", "parse_import"]

FORMAT = "straightline-progress"
VERSION = 1
MAX_ELEMENTS = 10_000
MAX_ATTEMPTS = 100_000
MAX_PAYLOAD_CHARS = 50_000
#: Build-It submissions carry the learner's code and the grader's report (its captured output too).
MAX_PAYLOAD_CHARS_BY_KIND = {"submission": 1_000_000}


class ImportFileError(ValueError):
    """An import file that is not valid progress JSON; the message says where and why."""


@dataclass(frozen=True)
class ImportPlan:
    states: list[ElementState]
    attempts: list[Attempt]


def export_progress(states: dict[str, ElementState], attempts: list[Attempt]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": datetime.now(timezone.utc).isoformat(),
        "elements": [
            {
                "id": s.element_id,
                "type": s.element_type,
                "status": s.status,
                "state": s.state,
                "updated_at": s.updated_at.isoformat(),
            }
            for s in sorted(states.values(), key=lambda s: s.element_id)
        ],
        "attempts": [
            {"element": a.element_id, "type": a.element_type, "kind": a.kind, "payload": a.payload, "at": a.created_at.isoformat()}
            for a in attempts
        ],
    }


def _time(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise ImportFileError(f"{where} must be an ISO 8601 date-time string, got {value!r:.60}")
    try:
        parsed = datetime.fromisoformat(value)
        return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)
    except ValueError:
        raise ImportFileError(f"{where} must be an ISO 8601 date-time like 2025-01-31T12:00:00+00:00, got {value!r:.60}") from None
    except OverflowError:  # e.g. 9999-12-31T23:59:59-14:00 is after the last representable UTC time
        raise ImportFileError(f"{where} must be a date-time between years 1 and 9999 in UTC, got {value!r:.60}") from None


def _keys(obj: Any, where: str, required: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise ImportFileError(f"{where} must be an object with keys {', '.join(required)}, got {type(obj).__name__}")
    missing = [k for k in required if k not in obj]
    if missing:
        raise ImportFileError(f"{where} lacks {', '.join(missing)} (needs {', '.join(required)})")
    unknown = sorted(set(obj) - set(required))
    if unknown:
        raise ImportFileError(f"{where} has unknown key(s) {', '.join(unknown)} (accepted: {', '.join(required)})")
    return obj


def _id(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 100:
        raise ImportFileError(f"{where} must be an element id (text of 1..100 characters), got {value!r:.60}")
    return value


def _type(value: Any, element_id: str, course: Course, where: str) -> str:
    if value not in AVAILABLE_TYPES:
        raise ImportFileError(f"{where} must be one of {', '.join(AVAILABLE_TYPES)}, got {value!r:.60}")
    known = course.elements.get(element_id)
    if known is not None and known.type != value:
        raise ImportFileError(f"{where} is {value!r} but element {element_id!r} is a {known.type} in this course")
    return value


def _file_object(raw: bytes) -> dict[str, Any]:
    """The JSON object of an uploaded file, checked to be this app's format and version."""
    if not raw.strip():
        raise ImportFileError("the file is empty: choose a progress file exported from this course")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ImportFileError("the file is not UTF-8 text: choose the .json file the export gave you") from None
    try:
        data = loads_strict(raw)
    except JsonProblem as exc:
        raise ImportFileError(f"{exc.where or 'the file'} {exc.message}") from None
    if not isinstance(data, dict):
        raise ImportFileError(f"the file must hold a JSON object with format {FORMAT!r}, got a {type(data).__name__}")
    if data.get("format") != FORMAT:
        raise ImportFileError(f"format must be {FORMAT!r}, got {data.get('format')!r:.60}: this is not a straightline progress file")
    if type(data.get("version")) is not int or data["version"] != VERSION:
        raise ImportFileError(f"version must be {VERSION} (the version this app reads), got {data.get('version')!r:.60}")
    return data


def _element_states(elements: list, course: Course) -> list[ElementState]:
    """The file's element entries as states; each id once, each state valid for its type."""
    states: list[ElementState] = []
    seen: set[str] = set()
    for i, entry in enumerate(elements):
        where = f"elements[{i}]"
        e = _keys(entry, where, ("id", "type", "status", "state", "updated_at"))
        eid = _id(e["id"], f"{where}.id")
        if eid in seen:
            raise ImportFileError(f"{where}.id {eid!r} appears twice")
        seen.add(eid)
        etype = _type(e["type"], eid, course, f"{where}.type")
        problem = validate_state(etype, e["status"], e["state"])
        if problem:
            raise ImportFileError(f"{where} ({eid}): {problem}")
        states.append(ElementState(eid, etype, e["status"], e["state"], _time(e["updated_at"], f"{where}.updated_at")))
    return states


def _attempt(entry: Any, where: str, course: Course) -> Attempt:
    """One attempt entry of the file: a kind its type records, with a payload of bounded size."""
    a = _keys(entry, where, ("element", "type", "kind", "payload", "at"))
    eid = _id(a["element"], f"{where}.element")
    etype = _type(a["type"], eid, course, f"{where}.type")
    if a["kind"] not in ATTEMPT_KINDS[etype]:
        raise ImportFileError(f"{where}.kind must be one of {', '.join(ATTEMPT_KINDS[etype])} for a {etype}, got {a['kind']!r:.60}")
    if not isinstance(a["payload"], dict):
        raise ImportFileError(f"{where}.payload must be an object, got {type(a['payload']).__name__}")
    limit = MAX_PAYLOAD_CHARS_BY_KIND.get(a["kind"], MAX_PAYLOAD_CHARS)
    if len(json.dumps(a["payload"])) > limit:
        raise ImportFileError(f"{where}.payload is larger than {limit} characters")
    if a["kind"] == "submission":
        payload = a["payload"]
        if not isinstance(payload.get("code"), str) or not isinstance(payload.get("result"), dict):
            raise ImportFileError(f"{where}.payload of a submission needs its code (text) and result (an object)")
    return Attempt(eid, etype, a["kind"], a["payload"], _time(a["at"], f"{where}.at"))


def parse_import(raw: bytes, course: Course) -> ImportPlan:
    """Validate an uploaded progress file completely; raises ImportFileError on the first problem."""
    data = _file_object(raw)
    _keys(data, "the file", ("format", "version", "exported_at", "elements", "attempts"))
    _time(data["exported_at"], "exported_at")
    elements, attempts = data["elements"], data["attempts"]
    if not isinstance(elements, list) or len(elements) > MAX_ELEMENTS:
        raise ImportFileError(f"elements must be a list of at most {MAX_ELEMENTS} entries")
    if not isinstance(attempts, list) or len(attempts) > MAX_ATTEMPTS:
        raise ImportFileError(f"attempts must be a list of at most {MAX_ATTEMPTS} entries")
    states = _element_states(elements, course)
    history = [_attempt(entry, f"attempts[{i}]", course) for i, entry in enumerate(attempts)]
    return ImportPlan(states, history)
