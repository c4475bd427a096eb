"""A live-training job's events, handed from the thread that publishes them to the event loop.

`course/live.py` publishes a job's events on a thread-safe `queue.Queue` (from the training thread,
or from the thread reading the training process's pipe). `job_events` starts one small thread per
stream that blocks on that queue and hands each event to the stream's `asyncio.Queue` with
`loop.call_soon_threadsafe`, so the stream wakes the moment an event exists instead of polling.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator
from typing import Any

__all__ = ["TERMINAL", "job_events"]

TERMINAL = ("done", "cancelled", "error")
#: how often the handing thread looks up from the job's queue to see whether its stream has closed
#: or the job ended without a last event (a blocking wait with a timeout, not a poll of the loop)
LOOK_UP_S = 1.0
_END = object()  # the job ended and everything it published was handed over


async def job_events(job: Any, *, heartbeat_s: float) -> AsyncIterator[dict[str, Any] | None]:
    """The job's events in order, ending after a terminal one (or once the job is done and nothing
    is left); None whenever `heartbeat_s` passes without an event (the stream sends a comment)."""
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[Any] = asyncio.Queue()
    closed = threading.Event()
    threading.Thread(target=_hand_over, args=(job, loop, inbox, closed), name=f"live-feed-{job.id}", daemon=True).start()
    try:
        while True:
            try:
                event = await asyncio.wait_for(inbox.get(), heartbeat_s)
            except TimeoutError:
                yield None
                continue
            if event is _END:
                return
            yield event
            if event["type"] in TERMINAL:
                return
    finally:
        closed.set()  # the handing thread stops at its next look-up


def _hand_over(job: Any, loop: asyncio.AbstractEventLoop, inbox: asyncio.Queue, closed: threading.Event) -> None:
    """Move the job's events onto `inbox` (on its loop) until the last one or until the stream closes."""
    while not closed.is_set():
        try:
            event = job.events.get(timeout=LOOK_UP_S)
        except queue.Empty:
            if job.done.is_set() and job.events.empty():
                _deliver(loop, inbox, _END)
                return
            continue
        if not _deliver(loop, inbox, event) or event["type"] in TERMINAL:
            return


def _deliver(loop: asyncio.AbstractEventLoop, inbox: asyncio.Queue, item: Any) -> bool:
    """Put `item` on `inbox` from this thread; False when the loop has closed (the server stopped)."""
    try:
        loop.call_soon_threadsafe(inbox.put_nowait, item)
    except RuntimeError:
        return False
    return True
