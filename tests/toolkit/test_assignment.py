"""The compiled exact assignment solver behind couplings.exact_ot, against scipy's optimum.

The auction works on rounded integer costs, so "exact" here means: the total cost equals the
optimum found by scipy's linear_sum_assignment up to that rounding (a few 1e-13 of the cost range
per pair), on the cost structures that break assignment solvers: near-ties between Euclidean
points, many exact ties, duplicated points, huge dynamic range, negative costs.
"""

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from straightline import couplings


def _solve(cost: np.ndarray) -> np.ndarray:
    """row -> column by the compiled solver."""
    n = cost.shape[0]
    return np.frombuffer(couplings._assignment.solve(np.ascontiguousarray(cost, dtype=np.float64), n), dtype=np.int64)


def _assert_optimal(cost: np.ndarray, row_to_col: np.ndarray) -> None:
    n = cost.shape[0]
    assert sorted(row_to_col.tolist()) == list(range(n)), "not a permutation"
    r, c = linear_sum_assignment(cost)
    best = cost[r, c].sum()
    got = cost[np.arange(n), row_to_col].sum()
    span = float(cost.max() - cost.min())
    assert got >= best - 1e-9 * max(1.0, abs(best))  # scipy's is optimal: nothing beats it
    assert got - best <= n * span * 2.0**-40 + 1e-12 * abs(best), (got, best)


def _euclid(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)


def test_compiled_solver_is_built():
    # setup.py builds it; without it exact_ot silently falls back to the much slower POT path
    assert couplings._assignment is not None, "straightline._assignment was not compiled (is a C compiler installed?)"


CASES = {
    "gaussians-2d": lambda rng, n: _euclid(rng.normal(size=(n, 2)), rng.normal(size=(n, 2)) * 0.5 + 1),
    "moons-like-64d": lambda rng, n: _euclid(rng.normal(size=(n, 64)), rng.normal(size=(n, 64)) * 0.1),
    "uniform-random": lambda rng, n: rng.random((n, n)),
    "integer-ties": lambda rng, n: rng.integers(0, 4, size=(n, n)).astype(float),
    "duplicated-points": lambda rng, n: _euclid(np.repeat(rng.normal(size=(4, 2)), n // 4 + 1, 0)[:n],
                                                rng.normal(size=(n, 2))),
    "all-equal": lambda rng, n: np.full((n, n), 3.5),
    "negative-and-huge-range": lambda rng, n: rng.normal(size=(n, n)) * 1e6 - 1e9 * (rng.random((n, n)) < 0.01),
    "tiny-scale": lambda rng, n: _euclid(rng.normal(size=(n, 2)), rng.normal(size=(n, 2))) * 1e-12,
}


@pytest.mark.parametrize("n", [1, 2, 3, 31, 256])
@pytest.mark.parametrize("case", sorted(CASES))
def test_solver_matches_scipy(case, n):
    rng = np.random.default_rng(n)
    cost = CASES[case](rng, n)
    _assert_optimal(cost, _solve(cost))


@pytest.mark.parametrize("n", [5, 8, 13, 64, 257])
def test_vector_and_scalar_inner_loops_agree_exactly(n):
    # the AVX2 scan (when the CPU has it) must make the same bids as the scalar one, so that
    # training is bit-identical on any machine; ties (integer costs) exercise the tie-breaking
    rng = np.random.default_rng(n)
    for cost in (CASES["gaussians-2d"](rng, n), CASES["integer-ties"](rng, n), CASES["duplicated-points"](rng, n)):
        c = np.ascontiguousarray(cost)
        assert couplings._assignment.solve(c, n, True) == couplings._assignment.solve(c, n, False)


def test_solver_at_batch_1024():
    rng = np.random.default_rng(7)
    cost = _euclid(rng.normal(size=(1024, 2)), rng.normal(size=(1024, 2)) + 2)
    _assert_optimal(cost, _solve(cost))


def test_exact_ot_recovers_a_hidden_permutation():
    g = torch.Generator().manual_seed(3)
    x_0 = torch.randn(300, 2, generator=g)
    hidden = torch.randperm(300, generator=g)
    perm = couplings.exact_ot_permutation(x_0, x_0[hidden])
    assert torch.equal(perm, hidden)


def test_fallback_without_the_extension_gives_the_same_cost(monkeypatch):
    g = torch.Generator().manual_seed(5)
    x_0, x_1 = torch.randn(128, 2, generator=g), torch.randn(128, 2, generator=g) + 1
    compiled = couplings.exact_ot_permutation(x_0, x_1)
    monkeypatch.setattr(couplings, "_assignment", None)
    fallback = couplings.exact_ot_permutation(x_0, x_1)
    assert sorted(fallback.tolist()) == list(range(128))

    def total(perm):
        return float(((x_0[perm] - x_1) ** 2).sum())

    assert total(compiled) == pytest.approx(total(fallback), rel=1e-9)


def test_non_finite_points_are_refused():
    x = torch.randn(8, 2)
    bad = x.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        couplings.exact_ot(bad, x)
    with pytest.raises(ValueError, match="finite"):
        couplings._assignment.solve(np.array([[0.0, np.inf], [1.0, 2.0]]), 2)


def test_solver_rejects_a_buffer_of_the_wrong_size():
    with pytest.raises(ValueError, match="n\\*n float64"):
        couplings._assignment.solve(np.zeros(5), 2)
    with pytest.raises(ValueError, match="n >= 1"):
        couplings._assignment.solve(b"", 0)
