"""The meanflow_target exercise's checks on known code (in-process, no sandbox): correct solutions
in several styles pass, each classic bug fails with the message that points at it, and the probes
are the toolkit's exact Gaussian flow map."""

from __future__ import annotations

import contextlib
import io
import textwrap

import pytest
import torch

from grader_harness import grade_in_process
from straightline.flowmaps import GaussianFlowMap
from straightline.grader import get_exercise
from straightline.grader.inside.probes import FlowMapProbe, flow_map

HEADER = "import torch\nfrom torch.func import jvp\n\n\ndef meanflow_target(u, x, s, t, v):\n"


def _target(body: str) -> str:
    return HEADER + textwrap.indent(textwrap.dedent(body), "    ")


CORRECT = {
    "jvp-detach": _target("""\
        _, du_ds = jvp(u, (x, s, t), (v, torch.ones_like(s), torch.zeros_like(t)))
        gap = (t - s).view(-1, *([1] * (x.dim() - 1)))
        return (v + gap * du_ds).detach()
    """),
    "no-grad-block": _target("""\
        with torch.no_grad():
            _, du_ds = jvp(lambda a, b, c: u(a, b, c), (x, s, t), (v, torch.ones_like(s), torch.zeros_like(t)))
        return v + (t - s).reshape((-1,) + (1,) * (x.ndim - 1)) * du_ds
    """),
    "unsqueeze-loop": _target("""\
        primal_out, du_ds = jvp(u, (x, s, t), (v, torch.ones(x.shape[0], dtype=x.dtype), torch.zeros_like(t)))
        gap = t - s
        while gap.dim() < x.dim():
            gap = gap.unsqueeze(-1)
        target = v + gap * du_ds
        return target.detach().clone()
    """),
}

SOLUTION = CORRECT["jvp-detach"]


def printed_numbers(text: str) -> list[float]:
    """The numbers in a printed tensor."""
    for ch in "()[],":
        text = text.replace(ch, " ")
    return [float(w) for w in text.split() if w[0] in "-0123456789"]


def _bug(tangent: str = "(v, torch.ones_like(s), torch.zeros_like(t))", combine: str = "v + gap * du_ds",
         primals: str = "(x, s, t)", detach: bool = True) -> str:
    tail = ".detach()" if detach else ""
    return _target(f"""\
        _, du_ds = jvp(u, {primals}, {tangent})
        gap = (t - s).view(-1, *([1] * (x.dim() - 1)))
        return ({combine}){tail}
    """)


BUGS = {
    "sign": (_bug(combine="v - gap * du_ds"), "wrong sign"),
    "s-minus-t": (_bug(combine="v + (-gap) * du_ds"), "wrong sign"),
    "no-partial-s": (_bug(tangent="(v, torch.zeros_like(s), torch.zeros_like(t))"), "s moves too"),
    "x-fixed": (_bug(tangent="(torch.zeros_like(x), torch.ones_like(s), torch.zeros_like(t))"), "tangent for x is not zero"),
    "tangent-on-t": (_bug(tangent="(v, torch.zeros_like(s), torch.ones_like(t))"), "instead of the start time s"),
    "both-times": (_bug(tangent="(v, torch.ones_like(s), torch.ones_like(t))"), "moves the end time t as well"),
    "swapped-call": (_bug(primals="(x, t, s)"), "two times swapped"),
    "no-v-term": (_bug(combine="gap * du_ds"), "missing the velocity term"),
    "no-gap": (_bug(combine="v + du_ds"), "not scaled by the time gap"),
    "no-stop-gradient": (_bug(detach=False), "return the target detached"),
    "returns-u": (_target("return u(x, s, t).detach()\n"), "u(x, s, t) itself"),
    "returns-pair": (_target("return jvp(u, (x, s, t), (v, torch.ones_like(s), torch.zeros_like(t)))\n"), "returns a pair"),
    "flat-gap": (_target("""\
        _, du_ds = jvp(u, (x, s, t), (v, torch.ones_like(s), torch.zeros_like(t)))
        return (v + (t - s)[:, None] * du_ds).detach()
    """), "[B, 1, ..., 1]"),
}


@pytest.mark.parametrize("name", list(CORRECT))
def test_correct_solutions_pass(name: str) -> None:
    result = grade_in_process("meanflow_target", CORRECT[name])
    assert result.status == "passed", result.message
    assert len(result.tests) == len(get_exercise("meanflow_target").cases)


@pytest.mark.parametrize("name", list(BUGS))
def test_each_classic_bug_fails_with_the_message_that_names_it(name: str) -> None:
    code, fragment = BUGS[name]
    result = grade_in_process("meanflow_target", code)
    assert result.status == "failed", result.message
    assert fragment in result.message, result.message
    assert "torch.ones_like(s), torch.zeros_like(t)" not in result.message  # no answer handed over


def test_the_gaussian_probe_is_the_toolkits_exact_flow_map() -> None:
    exact = GaussianFlowMap(mean=(-1.0, 0.5, 2.0), std=1.7)
    spec = {"kind": "gaussian", "mean": [-1.0, 0.5, 2.0], "std": 1.7}
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(8, 3, dtype=torch.float64, generator=gen)
    s, t = torch.rand(8, dtype=torch.float64, generator=gen) * 0.5, 0.5 + torch.rand(8, dtype=torch.float64, generator=gen) * 0.5
    torch.testing.assert_close(flow_map(spec, x, s, t), exact(x, s, t).detach(), rtol=1e-12, atol=1e-12)


def test_the_probe_output_carries_a_gradient() -> None:
    probe = FlowMapProbe({"kind": "smooth", "a": 1.0, "b": 0.5, "c": 0.2, "d": 0.3, "e": 0.1})
    out = probe(torch.randn(3, 2), torch.rand(3), torch.ones(3))
    assert out.requires_grad and probe.n_calls == 1


def test_every_mistake_differs_from_the_right_target_in_every_hidden_case() -> None:
    """Otherwise a bug could pass a test: each mistake must be caught somewhere other than s = t."""
    from straightline.grader.exercises.meanflow_target import MISTAKES, variant_target

    ex = get_exercise("meanflow_target")
    for case in ex.cases:
        if case.id == "diagonal":
            continue
        call = case.calls[0]
        x, s, t, v = (call.tensor(n) for n in ("x", "s", "t", "v"))
        spec = dict(call.params["u"].spec)
        right = variant_target(spec, x, s, t, v, tangent=(1, 1, 0))
        for options, _ in MISTAKES:
            assert (variant_target(spec, x, s, t, v, **options) - right).abs().max() > 1e-3, (case.id, options)


def test_the_visible_example_prints_zeros_with_a_solution() -> None:
    namespace: dict = {}
    exec(compile(SOLUTION, "<solution>", "exec"), namespace)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(get_exercise("meanflow_target").example_code, "<example>", "exec"), namespace)
    values = printed_numbers(out.getvalue())
    assert len(values) == 6 and max(abs(v) for v in values) < 1e-12
