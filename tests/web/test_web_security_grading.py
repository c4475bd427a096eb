"""Issue 11, finding 2: nobody can stall Build-It grading. Learner ids are free (no cookie, new
learner), so the limits that count are per client address: a flood of anonymous infinite loops
from one address gets 429 at once while a correct submission from another address is graded
before the flood's own loops end; a "run it in the simulation" that spins never holds a grading slot."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import httpx
import pytest

from straightline.grader import ClientBusy, Grader, GraderSettings, QueueFull

from web_support import FIXTURE_CHAPTERS, GOOD_CFM_LOSS as GOOD, JSON  # noqa: E402

pytestmark = pytest.mark.skipif(
    __import__("shutil").which("bwrap") is None, reason="bubblewrap (bwrap) is not installed; `make test` installs it"
)

GATE = {"answer": "trajectories cannot cross because solutions are unique"}
LOOP = "import torch\n\ndef cfm_loss(model, x_1, noise_fn=None):\n    while True:\n        pass\n"


async def anonymous(url: str, code: str, local_address: str = "127.0.0.1") -> tuple[httpx.Response, float]:
    """A client with no cookie: clears the gate, submits `code`; the answer and when it came."""
    transport = httpx.AsyncHTTPTransport(local_address=local_address)
    async with httpx.AsyncClient(base_url=url, timeout=120, transport=transport) as c:
        r = await c.post("/elements/b-gate/checkpoint", data=GATE, headers=JSON)
        assert r.status_code == 200, r.text
        r = await c.post("/elements/b-build/submission", data={"code": code}, headers=JSON)
        return r, time.monotonic()


def test_a_flood_from_one_address_gets_429_and_another_address_is_graded_first(tmp_path: Path, server_factory) -> None:
    server = server_factory(
        tmp_path / "d", db=f"sqlite:///{tmp_path / 'p.db'}", content_dir=FIXTURE_CHAPTERS,
        extra_env={"STRAIGHTLINE_GRADER_CONCURRENCY": "2", "STRAIGHTLINE_GRADER_WARM_WORKERS": "2"},
    )

    async def main() -> tuple[list[httpx.Response], int, httpx.Response]:
        flood = [asyncio.ensure_future(anonymous(server.url, LOOP)) for _ in range(20)]
        while sum(f.done() for f in flood) < 18:  # the refusals come back while the admitted loops run
            await asyncio.sleep(0.05)
        good, _ = await anonymous(server.url, GOOD, local_address="127.0.0.2")  # another address
        done = [f.result()[0] for f in flood if f.done()]
        running = [f for f in flood if not f.done()]
        for f in running:
            f.cancel()  # (the loops would end at the 10 s limit; the server is killed below)
        await asyncio.gather(*running, return_exceptions=True)
        return done, len(running), good

    answered, still_running, good = asyncio.run(main())
    server.kill(signal.SIGKILL)
    assert [r.status_code for r in answered] == [429] * 18 and still_running == 2, [r.text for r in answered]
    refused = answered[0]
    assert refused.headers["retry-after"] == "5" and refused.json()["error"]["reason"] == "client_busy"
    assert "your address" in refused.json()["error"]["message"].lower()
    assert good.status_code == 200 and good.json()["result"]["status"] == "passed", good.text
    # the flood's two admitted infinite loops were still being graded when the correct one was done


def test_a_spinning_simulation_run_never_holds_a_grading_slot() -> None:
    """One grading slot and one run slot: a run that spins for its whole limit, then a submission
    from someone else; the submission is graded while the run still spins."""
    settings = GraderSettings(max_concurrent=1, run_concurrent=1, run_waiting=0, warm_workers=0, run_timeout_s=60)
    grader = Grader(settings)
    try:
        spinning = grader.run_future("ada", "cfm_loss", LOOP, client="10.0.0.1")
        with pytest.raises(QueueFull, match="simulation runs are busy"):
            grader.run_future("bob", "cfm_loss", GOOD, client="10.0.0.2")  # runs have a queue of their own
        graded = grader.submit_future("cyd", "cfm_loss", GOOD, client="10.0.0.3").result(timeout=120)
        assert graded.status == "passed", graded.message
        assert not spinning.done(), "the run ended before the submission: the test proves nothing"
    finally:
        grader.close()


def test_per_client_limits_do_not_depend_on_the_learner_id() -> None:
    grader = Grader(GraderSettings(max_concurrent=2, max_per_client=2, warm_workers=0, timeout_s=30))
    try:
        first = grader.submit_future("a", "cfm_loss", LOOP, client="10.0.0.1")
        second = grader.submit_future("b", "cfm_loss", LOOP, client="10.0.0.1")
        with pytest.raises(ClientBusy, match="already has 2 submissions or runs"):
            grader.submit_future("c", "cfm_loss", GOOD, client="10.0.0.1")
        other = grader.submit_future("d", "cfm_loss", GOOD, client="10.0.0.2").result(timeout=120)
        assert other.status == "passed" and not first.done() and not second.done()
    finally:
        grader.close()
