"""Worked examples with numbers you can drag (`{explore}` elements).

An explore element names a `model` (below): its draggable variables with their ranges, the
numbers it computes from them (outputs) and the constants it needs (`given`). Its `text` is
Markdown in which `[[name]]` puts a draggable variable and `[[=name]]` a computed output; the
browser (`web/static/explore.js`) recomputes every output and redraws the small figure as a
number is dragged or moved with the arrow keys. Placeholders may not sit inside `$...$` math.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = ["MODELS", "Model", "PLACEHOLDER", "Var", "check_fields", "config", "placeholders"]

PLACEHOLDER = re.compile(r"\[\[(=?)([a-z][a-z0-9_]*)\]\]")


@dataclass(frozen=True)
class Var:
    lo: float
    hi: float
    step: float
    default: float


@dataclass(frozen=True)
class Model:
    vars: dict[str, Var]
    outputs: tuple[str, ...]
    given: dict[str, int]  # constant -> length of its vector


MODELS: dict[str, Model] = {
    # x_t = (1 - t) x_0 + t x_1 (Ch 0): the point on the segment
    "lerp": Model({"t": Var(0.0, 1.0, 0.05, 0.25)}, ("one_minus_t", "x_t", "u"), {"x_0": 2, "x_1": 2}),
    # SD3's shift t -> t / (alpha - (alpha - 1) t) (Ch 4): where t = 1/2 goes, the share of logit-normal training times below 1/2
    "sd3-shift": Model({"alpha": Var(0.5, 6.0, 0.25, 3.0)}, ("t_half", "share_noisy"), {}),
    # classifier-free guidance (Ch 9): v = v_uncond + w (v_cond - v_uncond)
    "cfg": Model({"w": Var(0.0, 6.0, 0.25, 2.0)}, ("v", "diff", "speed"), {"v_uncond": 2, "v_cond": 2}),
}


def placeholders(text: str) -> list[tuple[bool, str]]:
    """(is_output, name) of every placeholder in `text`, in order."""
    return [(m.group(1) == "=", m.group(2)) for m in PLACEHOLDER.finditer(text)]


def _check_given(where: str, model: Model, given: Any) -> None:
    if not isinstance(given, dict) or set(given) != set(model.given):
        raise ValueError(f"{where}: given must set exactly {sorted(model.given) or 'nothing'}")
    for name, size in model.given.items():
        value = given[name]
        ok = isinstance(value, list) and len(value) == size and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        if not ok or any(abs(v) > 100 for v in value):
            raise ValueError(f"{where}: given {name} must be {size} numbers in [-100, 100], got {value!r}")


def _check_values(where: str, model: Model, values: Any) -> None:
    if not isinstance(values, dict) or set(values) - set(model.vars):
        raise ValueError(f"{where}: values may set only {sorted(model.vars)}, got {values!r}")
    for name, value in values.items():
        var = model.vars[name]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not var.lo <= value <= var.hi:
            raise ValueError(f"{where}: value of {name} must be a number in [{var.lo:g}, {var.hi:g}], got {value!r}")


def _check_text(where: str, model: Model, text: Any) -> None:
    if not isinstance(text, str):
        raise ValueError(f"{where}: text must be Markdown text")
    found = placeholders(text)
    for is_output, name in found:
        known = model.outputs if is_output else tuple(model.vars)
        if name not in known:
            kind = "output" if is_output else "draggable variable"
            raise ValueError(f"{where}: [[{'=' if is_output else ''}{name}]] is not a {kind} of this model (known: {', '.join(known)})")
    dragged = {name for is_output, name in found if not is_output}
    if not dragged:
        raise ValueError(f"{where}: the text needs at least one draggable number, e.g. [[{next(iter(model.vars))}]]")


def check_fields(where: str, fields: dict[str, Any]) -> Model:
    """The model of an `{explore}` element's fields; ValueError naming what is wrong."""
    name = fields.get("model")
    model = MODELS.get(name) if isinstance(name, str) else None
    if model is None:
        raise ValueError(f"{where}: model {name!r} is not known (known: {', '.join(MODELS)})")
    _check_given(where, model, fields.get("given", {}))
    _check_values(where, model, fields.get("values", {}))
    _check_text(where, model, fields.get("text"))
    return model


def config(fields: dict[str, Any]) -> dict[str, Any]:
    """What the browser needs: the model, each variable's range and starting value, the constants."""
    model = MODELS[fields["model"]]
    values = fields.get("values", {})
    return {
        "model": fields["model"],
        "vars": {k: {"min": v.lo, "max": v.hi, "step": v.step, "value": values.get(k, v.default)} for k, v in model.vars.items()},
        "given": fields.get("given", {}),
    }
