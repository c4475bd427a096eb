"""Couplings: exact OT is a true permutation with the minimal cost; Sinkhorn approaches it."""

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from straightline import couplings


def _cost(x_0, x_1):
    return float(((x_0 - x_1) ** 2).sum())


@pytest.mark.parametrize("batch", [2, 17, 256])
def test_exact_ot_is_a_permutation_with_minimal_cost(batch):
    g = torch.Generator().manual_seed(batch)
    x_0 = torch.randn(batch, 2, generator=g)
    x_1 = torch.randn(batch, 2, generator=g) * 2 + 1
    y_0, y_1 = couplings.exact_ot(x_0, x_1)
    assert torch.equal(y_1, x_1)  # data keep their order
    perm = couplings.exact_ot_permutation(x_0, x_1)
    assert sorted(perm.tolist()) == list(range(batch))  # every noise point used exactly once
    assert torch.equal(y_0, x_0[perm])
    cost = ((x_0[:, None, :] - x_1[None, :, :]) ** 2).sum(-1).numpy()
    r, c = linear_sum_assignment(cost)
    assert _cost(y_0, y_1) == pytest.approx(cost[r, c].sum(), rel=1e-6)
    if batch > 2:
        random_costs = [_cost(x_0[torch.randperm(batch, generator=g)], x_1) for _ in range(20)]
        assert _cost(y_0, y_1) < min(random_costs)


def test_exact_ot_works_on_images():
    x_0 = torch.randn(8, 1, 4, 4)
    x_1 = x_0[torch.tensor([3, 1, 0, 2, 7, 6, 5, 4])] + 0.01
    y_0, _ = couplings.exact_ot(x_0, x_1)
    assert torch.allclose(y_0 + 0.01, x_1)


def test_sinkhorn_approaches_exact_ot_as_reg_shrinks():
    g = torch.Generator().manual_seed(0)
    x_0 = torch.randn(64, 2, generator=g)
    x_1 = torch.randn(64, 2, generator=g) + torch.tensor([3.0, 0.0])
    exact = _cost(*couplings.exact_ot(x_0, x_1))
    costs = []
    for reg in (1.0, 0.1, 0.01, 0.001):
        plan = couplings.sinkhorn_plan(x_0, x_1, reg)
        assert torch.allclose(plan.sum(0), torch.full((64,), 1 / 64, dtype=plan.dtype), atol=1e-6)
        assert torch.allclose(plan.sum(1), torch.full((64,), 1 / 64, dtype=plan.dtype), atol=1e-6 if reg >= 0.1 else 1e-4)
        cost_matrix = torch.cdist(x_0.double(), x_1.double()) ** 2
        costs.append(float((plan * cost_matrix).sum()) * 64)
    assert costs == sorted(costs, reverse=True)
    assert costs[-1] == pytest.approx(exact, rel=1e-2)
    y_0, y_1 = couplings.sinkhorn(x_0, x_1, 0.001, generator=torch.Generator().manual_seed(1))
    assert _cost(y_0, y_1) == pytest.approx(exact, rel=2e-2)


def test_independent_keeps_the_pairs():
    x_0, x_1 = torch.randn(4, 2), torch.randn(4, 2)
    y_0, y_1 = couplings.independent(x_0, x_1)
    assert y_0 is x_0 and y_1 is x_1


@pytest.mark.parametrize("fn", [couplings.independent, couplings.exact_ot, couplings.sinkhorn])
def test_shape_mismatch_is_named(fn):
    with pytest.raises(ValueError, match=r"x_0 and x_1 must have the same shape, got \[4, 2\] and \[5, 2\]"):
        fn(torch.zeros(4, 2), torch.zeros(5, 2))


def test_sinkhorn_reg_must_be_positive():
    with pytest.raises(ValueError, match="reg must be > 0, got 0"):
        couplings.sinkhorn(torch.zeros(4, 2), torch.zeros(4, 2), 0)
