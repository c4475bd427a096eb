"""Live training: real snapshots, one job per learner, a global cap, cancellation."""

import base64
import numpy as np
import pytest
from pydantic import ValidationError

from straightline.course.live import Busy, LiveParams, LiveTraining


def _events(job, timeout=120):
    out = []
    while True:
        event = job.events.get(timeout=timeout)
        out.append(event)
        if event["type"] in ("done", "cancelled", "error"):
            return out


def test_a_job_streams_snapshots_and_the_loss_falls():
    live = LiveTraining(max_jobs=2)
    job = live.start("learner-a", LiveParams(dataset="moons", steps=300, snapshot_every=50))
    events = _events(job)
    snaps = [e for e in events if e["type"] == "snapshot"]
    assert [s["step"] for s in snaps] == [50, 100, 150, 200, 250, 300]
    assert events[-1]["type"] == "done"
    assert snaps[-1]["loss"] < snaps[0]["loss"]
    samples = np.frombuffer(base64.b64decode(snaps[-1]["samples"]["data"]), dtype="<i2")
    assert samples.size == 2 * 300


def test_drawn_points_train_too():
    live = LiveTraining()
    pts = [(float(np.cos(a)) * 2, float(np.sin(a)) * 2) for a in np.linspace(0, 6, 50)]
    job = live.start("learner-b", LiveParams(dataset=None, points=pts, steps=60, snapshot_every=20))
    assert _events(job)[-1]["type"] == "done"


def test_one_job_per_learner_and_a_global_cap():
    live = LiveTraining(max_jobs=1)
    first = live.start("a", LiveParams(steps=5000))
    second = live.start("a", LiveParams(steps=5000))  # replaces the learner's first job
    assert first.cancelled.is_set()
    assert first.done.wait(60)
    with pytest.raises(Busy, match="the limit is 1"):
        live.start("b", LiveParams(steps=5000))
    second.cancel()
    assert second.done.wait(60)
    assert live.running() == 0
    assert live.get(second.id, "b") is None  # another learner cannot see the job


def test_cancel_stops_early():
    live = LiveTraining()
    job = live.start("c", LiveParams(steps=5000, snapshot_every=10))
    job.events.get(timeout=60)
    job.cancel()
    assert job.done.wait(60)
    assert job.steps_done < 5000
    drained = []
    while not job.events.empty():
        drained.append(job.events.get_nowait())
    assert drained[-1]["type"] == "cancelled"


@pytest.mark.parametrize(
    "kwargs,needle",
    [({"steps": 9}, "steps"), ({"dataset": "swissroll"}, "swissroll"), ({"points": [(0.0, 0.0)] * 3}, "8 to 2000"),
     ({"points": [(9.0, 0.0)] * 10}, "[-4, 4]"), ({"lr": 1.0}, "lr")],
)
def test_bad_parameters(kwargs, needle):
    with pytest.raises(ValidationError) as info:
        LiveParams(**kwargs)
    assert needle in str(info.value)


def test_isolated_jobs_train_in_a_worker_process_and_survive_its_death():
    from straightline.course.live import LiveWorker

    worker = LiveWorker()
    live = LiveTraining(max_jobs=2)
    live.isolate = True
    import straightline.course.live as live_module

    previous, live_module._WORKER = live_module._WORKER, worker
    try:
        job = live.start("iso", LiveParams(dataset="two_clusters", steps=40, snapshot_every=20))
        events = _events(job)
        assert [e["type"] for e in events] == ["snapshot", "snapshot", "done"]
        assert job.state == "done" and job.steps_done == 40
        pid = worker._process.pid
        assert pid != __import__("os").getpid()

        long = live.start("iso", LiveParams(steps=5000, snapshot_every=10))
        assert long.events.get(timeout=60)["type"] == "snapshot"
        long.cancel()  # reaches the worker through the pipe
        assert long.done.wait(60) and long.state == "cancelled" and long.steps_done < 5000

        doomed = live.start("iso", LiveParams(steps=5000, snapshot_every=10))
        assert doomed.events.get(timeout=60)["type"] == "snapshot"
        worker._process.kill()  # the process dies: its job ends with an error, and the next job gets a new process
        assert doomed.done.wait(60) and doomed.state == "error"
        again = live.start("iso", LiveParams(dataset="moons", steps=20, snapshot_every=10))
        assert _events(again)[-1]["type"] == "done"
        assert worker._process.pid != pid
    finally:
        worker.stop()
        live_module._WORKER = previous
