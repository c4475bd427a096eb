"""The simulation runtime and the live-training stream wake on events from other threads.

No torch and no server: a stand-in loader thread and a stand-in training job, each handing over
from a thread as the real ones do (web/sim_runtime.py, web/live_feed.py)."""

from __future__ import annotations

import asyncio
import queue
import threading
from dataclasses import dataclass, field

import pytest

from straightline.web.live_feed import job_events
from straightline.web.sim_runtime import NotReady, SimRuntime


def _runtime_loading_with(load) -> SimRuntime:
    runtime = SimRuntime()
    runtime._load = load  # start() runs it on its loader thread
    return runtime


def test_wait_ready_returns_once_the_loader_thread_has_loaded():
    release = threading.Event()
    runtime: SimRuntime

    def load():
        release.wait(30)
        runtime.engine = object()
        runtime._mark_loaded()

    runtime = _runtime_loading_with(load)

    async def main() -> str:
        waiting = asyncio.create_task(runtime.wait_ready(timeout=30))
        await asyncio.sleep(0)
        assert not waiting.done()  # nothing loaded yet: it waits
        release.set()
        await waiting
        return runtime.state

    assert asyncio.run(main()) in ("warming", "ready")


def test_wait_ready_names_a_failed_load_and_a_slow_one():
    release = threading.Event()
    runtime: SimRuntime

    def load():
        release.wait(30)
        runtime.error = "the simulation models could not be loaded: disk on fire"
        runtime._mark_loaded()

    runtime = _runtime_loading_with(load)
    with pytest.raises(NotReady, match="still loading"):
        asyncio.run(runtime.wait_ready(timeout=0.05))
    release.set()
    runtime._thread.join(30)
    with pytest.raises(NotReady, match="disk on fire"):
        asyncio.run(runtime.wait_ready(timeout=30))


@dataclass
class _Job:
    id: str = "job-1"
    events: queue.Queue = field(default_factory=queue.Queue)
    done: threading.Event = field(default_factory=threading.Event)


async def _collect(job: _Job, heartbeat_s: float = 30.0) -> list:
    return [event async for event in job_events(job, heartbeat_s=heartbeat_s)]


def test_the_stream_gets_every_event_a_thread_publishes_and_ends_after_the_last():
    job = _Job()
    sent = [{"type": "snapshot", "step": s} for s in (10, 20, 30)] + [{"type": "done", "step": 30}]

    def train():
        for event in sent:
            job.events.put(event)
        job.events.put({"type": "snapshot", "step": 99})  # after the last event: never read
        job.done.set()

    threading.Thread(target=train).start()
    assert asyncio.run(_collect(job)) == sent


def test_the_stream_beats_while_idle_and_ends_when_the_job_ends_without_a_last_event():
    job = _Job()

    async def main() -> list:
        stream = job_events(job, heartbeat_s=0.01)
        first = await anext(stream)  # nothing published yet: a heartbeat
        job.events.put({"type": "snapshot", "step": 1})
        job.done.set()
        rest = [event async for event in stream if event is not None]
        return [first, *rest]

    assert asyncio.run(main()) == [None, {"type": "snapshot", "step": 1}]
