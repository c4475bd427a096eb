"""Distillation: progressive halving and one-shot pairs give few-step students that match the teacher."""

import math

import pytest
import torch

import straightline as sl
from straightline.distilling import DistillResult, DistillStage, distill

from flows import StraightGaussian, eval_noise, w2_at  # tests/toolkit/flows.py


@pytest.fixture(scope="module")
def teacher(trained_8gaussians):
    return trained_8gaussians


@pytest.fixture(scope="module")
def progressive(teacher):
    return distill(teacher, student_steps=1, method="progressive", teacher_steps=64, n_pairs=512, train_steps=150,
                   seed=0, progress=False)


def test_progressive_schedule_halves_from_64_to_1(progressive):
    assert isinstance(progressive, DistillResult)
    assert progressive.method == "progressive" and progressive.student_steps == 1
    assert [(s.teacher_steps, s.student_steps) for s in progressive.stages] == [
        (64, 32), (32, 16), (16, 8), (8, 4), (4, 2), (2, 1)
    ]
    assert [s.stage for s in progressive.stages] == [1, 2, 3, 4, 5, 6]
    for s in progressive.stages:
        assert isinstance(s, DistillStage) and len(s.losses) == 150
        assert math.isfinite(s.loss) and 0 <= s.loss < 0.05, (s.teacher_steps, s.loss)
        assert s.loss < s.losses[0] or s.losses[0] < 1e-4  # each stage learns (or starts at the answer)
    print("stage losses", [f"{s.loss:.2e}" for s in progressive.stages])


def test_one_step_student_beats_the_teacher_in_one_step(teacher, progressive):
    teacher_1, teacher_many = w2_at(teacher, 1), w2_at(teacher, 32, "rk4")
    student_1 = w2_at(progressive.student, 1)
    print(f"1-step W2 teacher {teacher_1:.3f}, student {student_1:.3f}; teacher rk4x32 {teacher_many:.3f}")
    assert student_1 < 0.5 * teacher_1, (student_1, teacher_1)  # measured 0.59 vs 2.2
    assert student_1 < teacher_many + 0.2, (student_1, teacher_many)  # close to the teacher's ODE


def test_one_shot_student_reproduces_teacher_pairs(teacher):
    result = distill(teacher, student_steps=1, method="one_shot", teacher_steps=32, n_pairs=4096, train_steps=400,
                     seed=0, progress=False)
    assert result.method == "one_shot" and result.student_steps == 1
    assert [(s.teacher_steps, s.student_steps) for s in result.stages] == [(32, 1)]
    x_0 = eval_noise(2000, seed=321)  # held-out noise
    x_1 = sl.integrate(teacher, x_0, steps=32, method="rk4").x  # [2000, 2] the teacher's pairs
    with torch.no_grad():
        v = result.student(x_0, torch.zeros(len(x_0)))  # [2000, 2]
    student_err = torch.mean((v - (x_1 - x_0)) ** 2).item()  # regression of v(x_0, 0) onto x_1 - x_0
    teacher_err = torch.mean((sl.sample(teacher, x_0, steps=1) - x_1) ** 2).item()
    assert torch.allclose(sl.sample(result.student, x_0, steps=1), x_0 + v, atol=1e-6)
    spread = torch.mean((x_1 - x_1.mean(0)) ** 2).item()
    print(f"one-shot held-out MSE {student_err:.4f}; teacher's own 1-step MSE {teacher_err:.4f}; spread {spread:.2f}")
    assert student_err < 0.02 * spread, (student_err, spread)  # measured 0.005 vs 3.3
    assert student_err < 0.02 * teacher_err, (student_err, teacher_err)
    assert abs(result.stages[0].loss - student_err) < 0.02  # training loss says the same on held-out noise


def test_one_shot_two_step_student_backpropagates_through_both_steps(teacher):
    result = distill(teacher, student_steps=2, method="one_shot", teacher_steps=16, n_pairs=1024, train_steps=150,
                     seed=0, progress=False)
    x_0 = eval_noise(1000, seed=5)
    x_1 = sl.integrate(teacher, x_0, steps=16, method="rk4").x
    student_err = torch.mean((sl.sample(result.student, x_0, steps=2) - x_1) ** 2).item()
    teacher_err = torch.mean((sl.sample(teacher, x_0, steps=2) - x_1) ** 2).item()
    assert student_err < 0.2 * teacher_err, (student_err, teacher_err)


def test_progressive_to_four_steps_and_reproducibility():
    torch.manual_seed(3)
    model = sl.models.MLP(dim=2, hidden=16, depth=2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    kwargs = {"student_steps": 4, "teacher_steps": 16, "n_pairs": 64, "train_steps": 15, "batch_size": 32}
    kwargs["progress"] = False
    torch.manual_seed(11)
    expected_draw = torch.rand(3)
    torch.manual_seed(11)
    a = distill(model, seed=1, **kwargs)
    assert torch.equal(torch.rand(3), expected_draw)  # the global random state is left alone
    b = distill(model, seed=1, **kwargs)
    c = distill(model, seed=2, **kwargs)
    assert [(s.teacher_steps, s.student_steps) for s in a.stages] == [(16, 8), (8, 4)]
    assert a.student_steps == 4
    assert [s.losses for s in a.stages] == [s.losses for s in b.stages]
    assert all(torch.equal(p, q) for p, q in zip(a.student.parameters(), b.student.parameters(), strict=True))
    assert not all(torch.equal(p, q) for p, q in zip(a.student.parameters(), c.student.parameters(), strict=True))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the teacher is untouched


def test_an_exact_straight_teacher_is_kept():
    teacher = StraightGaussian()
    x_0 = torch.randn(256, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    exact = 0.5 * x_0 + teacher.mu.detach()  # [256, 2]
    for method, steps in (("progressive", 4), ("one_shot", 8)):
        result = distill(teacher, student_steps=1, method=method, teacher_steps=steps, n_pairs=256, train_steps=150,
                         seed=0, progress=False)
        err = (sl.sample(result.student, x_0, steps=1) - exact).abs().max().item()
        assert err < 1e-5, (method, err)  # measured 3e-8 and 2e-8
        assert torch.allclose(result.student.mu, teacher.mu, atol=1e-5)


def test_class_conditional_distillation_uses_the_labels():
    torch.manual_seed(1)
    model = sl.models.MLP(dim=2, hidden=16, depth=2, num_classes=3)
    labels = torch.arange(12) % 3
    for method in ("progressive", "one_shot"):
        result = distill(model, student_steps=1, method=method, teacher_steps=2, n_pairs=12, train_steps=3,
                         batch_size=6, labels=labels, progress=False)
        assert result.student(torch.zeros(12, 2), torch.zeros(12), labels).shape == (12, 2)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"student_steps": 3}, (r"student_steps must be teacher_steps / 2\^m .*\(for teacher_steps=64: "
                                r"32, 16, 8, 4, 2, 1\), got 3")),
        ({"student_steps": 64}, r"for teacher_steps=64: 32, 16, 8, 4, 2, 1\), got 64"),
        ({"student_steps": 128}, r"got 128"),
        ({"teacher_steps": 12, "student_steps": 2}, r"for teacher_steps=12: 6, 3\), got 2"),
        ({"teacher_steps": 7}, r"for teacher_steps=7: none: teacher_steps is odd\), got 1"),
        ({"student_steps": 0}, r"student_steps must be a positive integer, got 0"),
        ({"teacher_steps": -4}, r"teacher_steps must be a positive integer, got -4"),
        ({"method": "consistency"}, r"unknown method 'consistency'; accepted: progressive, one_shot"),
        ({"solver": "rk45"}, r"unknown solver 'rk45'; accepted: euler, midpoint, heun, rk4, dopri5"),
        ({"train_steps": 0}, r"train_steps must be a positive integer, got 0"),
        ({"n_pairs": 0}, r"n_pairs must be a positive integer, got 0"),
        ({"batch_size": 0}, r"batch_size must be a positive integer, got 0"),
    ],
)
def test_distill_rejects_bad_values(kwargs, message):
    model = sl.models.MLP(dim=2, hidden=8, depth=1)
    with pytest.raises(ValueError, match=message):
        distill(model, **{"n_pairs": 8, "train_steps": 1, "progress": False, **kwargs})


def test_one_shot_accepts_any_step_count():
    model = sl.models.MLP(dim=2, hidden=8, depth=1)
    result = distill(model, student_steps=3, method="one_shot", teacher_steps=6, n_pairs=8, train_steps=2,
                     progress=False)
    assert result.student_steps == 3 and result.stages[0].student_steps == 3
