"""Live training's step mode and end-of-run check: a paused job trains one shown minibatch per
"step" (its x_t and u_t follow the straight path, its loss is the pairs' mean, and the update
lowers it), then resumes and finishes; an untrained model is reported as not converged with the
setting that fixes it; unknown commands are refused by name. Also through the worker process."""

import base64

import numpy as np
import pytest
import torch

import straightline as sl
from straightline.course.live import FIX_STEPS, Job, LiveParams, LiveTraining, quality


def _next(job, kind, timeout=120):
    while True:
        event = job.events.get(timeout=timeout)
        if event["type"] == kind:
            return event
        assert event["type"] not in ("done", "cancelled", "error") or kind in ("done", "cancelled", "error"), event


def _array(encoded):
    return np.frombuffer(base64.b64decode(encoded["data"]), "<i2").reshape(encoded["shape"]) / encoded["scale"]


@pytest.mark.parametrize("isolate", [False, True], ids=["thread", "worker-process"])
def test_pause_step_resume(isolate: bool) -> None:
    live = LiveTraining(isolate=isolate)
    job = live.start("stepper", LiveParams(dataset="moons", steps=120, snapshot_every=20))
    job.control("pause")
    paused = _next(job, "paused")
    job.control("step")
    batch = _next(job, "batch")
    x_0, x_1, x_t, u_t, loss = (_array(batch[k]) for k in ("x_0", "x_1", "x_t", "u_t", "pair_loss"))
    t = np.array(batch["t"])[:, None]
    assert x_0.shape == x_1.shape == (256, 2) and batch["step"] == paused["step"]
    assert np.allclose(x_t, (1 - t) * x_0 + t * x_1, atol=3e-3)
    assert np.allclose(u_t, x_1 - x_0, atol=3e-3)
    assert loss.mean() == pytest.approx(batch["loss"], abs=2e-3)
    assert batch["loss_after"] < batch["loss"]  # one optimizer step on exactly this batch
    job.control("step")
    assert _next(job, "batch")["step"] == paused["step"]  # still paused: the run waits
    job.control("resume")
    _next(job, "resumed")
    done = _next(job, "done")
    assert done["step"] == 120 and {"w2", "off_data", "floor", "floor_high", "converged"} <= set(done["quality"])


def test_an_untrained_model_is_not_converged_and_the_fix_is_named() -> None:
    torch.manual_seed(0)
    model = sl.models.MLP(dim=2, hidden=64, depth=3)
    noise = torch.randn(300, 2, generator=torch.Generator().manual_seed(0))
    reference = sl.data.toy("moons", 300, seed=1)
    q = quality(LiveParams(dataset="moons", steps=1500), model, noise, reference)
    assert q["converged"] is False and q["off_data"] > 2 * q["floor_high"]
    assert q["fix"] == {"setting": "steps", "value": FIX_STEPS}
    assert quality(LiveParams(dataset="moons", steps=FIX_STEPS), model, noise, reference)["fix"] is None
    spirals = quality(LiveParams(dataset="spirals", steps=1500), model, noise, sl.data.toy("spirals", 300, seed=1))
    assert spirals["converged"] is False and spirals["fix"] is None  # measured: more steps do not fix the spirals


def test_unknown_commands_are_refused_by_name() -> None:
    job = Job(id="x", learner="l", params=LiveParams())
    with pytest.raises(ValueError, match="command must be one of pause, step, resume, got 'jump'"):
        job.control("jump")
