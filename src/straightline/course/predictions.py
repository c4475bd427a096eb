"""Predict-then-reveal: the learner commits a guess about a simulation before it plays.

A `{predict}` element names a simulation element of its chapter (`sim`, its id) and a `rule`,
which says what is predicted and how the simulation's own result decides the outcome (the
browser applies the rule to the result: `web/static/sims/predict.js`). Two kinds of rule:

    choice   the learner picks one of the element's `options`; each option names an outcome
             the rule can produce (`outcome`), so the reveal can say which one the model gave
    point    the learner clicks on the simulation's picture (or types x and y); the guess is
             the point, inside the rule's box

The guess is stored as the element's state (`progress.py`), and a committed guess is final.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["RULES", "Rule", "check_fields", "parse_guess"]


@dataclass(frozen=True)
class Rule:
    sim: str  # the simulation the rule reads
    kind: str  # "choice" or "point"
    outcomes: tuple[str, ...] = ()  # choice: what the reveal can find
    box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # point: x_min, x_max, y_min, y_max


RULES: dict[str, Rule] = {
    # Ch 2: does minibatch OT make the learned flow's Euler error smaller at the chosen steps?
    "ot-straightens": Rule("curved-vs-straight", "choice", ("smaller", "same", "larger")),
    # Ch 4: at t = 0, is the field a pull towards one point (E[x_1] - x), or something else?
    "field-at-zero": Rule("velocity-field", "choice", ("one-point", "nearest-data", "outward")),
    # Ch 5: where does one Euler step land? (the centre of the landed particles)
    "one-step-landing": Rule("euler-steps", "point", box=(-4.0, 4.0, -3.1, 3.1)),
    # Ch 6: the first reflow round whose one-step W2 is within the data's own floor band
    "one-step-floor-round": Rule("reflow-straightening", "choice", ("1", "2", "3", "never")),
}


def _options(where: str, rule: Rule, options: Any) -> list[dict[str, str]]:
    """A choice rule's options: 2..4 of {outcome, text}, outcomes known to the rule and distinct."""
    if not isinstance(options, list) or not 2 <= len(options) <= 4:
        raise ValueError(f"{where}: a {rule.kind} prediction needs 2 to 4 options")
    seen: set[str] = set()
    for i, opt in enumerate(options, 1):
        if not isinstance(opt, dict) or set(opt) != {"outcome", "text"}:
            raise ValueError(f"{where} option {i} needs exactly 'outcome' and 'text'")
        outcome = str(opt["outcome"])
        if outcome not in rule.outcomes:
            raise ValueError(f"{where} option {i}: outcome {outcome!r} is not one of {', '.join(rule.outcomes)}")
        if outcome in seen:
            raise ValueError(f"{where} option {i}: outcome {outcome!r} is used twice")
        seen.add(outcome)
    return options


def check_fields(where: str, fields: dict[str, Any]) -> Rule:
    """The rule of a `{predict}` element's fields; ValueError naming what is wrong."""
    name = fields.get("rule")
    rule = RULES.get(name) if isinstance(name, str) else None
    if rule is None:
        raise ValueError(f"{where}: rule {name!r} is not known (known: {', '.join(RULES)})")
    if not isinstance(fields.get("sim"), str):
        raise ValueError(f"{where}: sim must be the id of a simulation element in this chapter")
    if rule.kind == "choice":
        _options(where, rule, fields.get("options"))
    elif "options" in fields:
        raise ValueError(f"{where}: rule {name!r} takes a click on the picture, not options")
    return rule


def parse_guess(rule: Rule, options: list[dict[str, Any]] | None, raw: str) -> str:
    """The guess as stored (an outcome, or "x,y" rounded to 3 decimals); ValueError when refused."""
    raw = raw.strip()
    if rule.kind == "choice":
        allowed = [str(o["outcome"]) for o in options or []]
        if raw not in allowed:
            raise ValueError(f"guess must be one of {', '.join(allowed)}; got {raw[:40]!r}")
        return raw
    x0, x1, y0, y1 = rule.box
    parts = raw.split(",")
    try:
        x, y = (float(p) for p in parts) if len(parts) == 2 else (math.nan, math.nan)
    except ValueError:
        x, y = math.nan, math.nan
    if not (x0 <= x <= x1 and y0 <= y <= y1):
        raise ValueError(f"guess must be a point 'x,y' with x in [{x0:g}, {x1:g}] and y in [{y0:g}, {y1:g}]; got {raw[:40]!r}")
    return f"{round(x, 3):g},{round(y, 3):g}"
