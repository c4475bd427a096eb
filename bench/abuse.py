"""A well-behaved learner while others abuse the server: grading, simulations and pages.

    python bench/abuse.py [--seconds 60] [--quiet-seconds 20] [--spread] [--flood 20] [--heavy 8]

Starts a real server (`python -m straightline.web.server`, the real course, SQLite), then measures
one well-behaved learner (from its own loopback address, 127.0.0.2) for `--quiet-seconds` alone
and then for `--seconds` while

- `--flood` (20) anonymous clients (no cookie kept: every submission a new learner) clear the
  Build-It gates and submit infinite loops to `c4-build-cfm-loss` again and again, as fast as the
  server answers (a 429 is retried after 0.2 s, not after its Retry-After: an abuser ignores it);
- `--heavy` (8) clients request the maximum-cost `particles-flow` simulation (the largest
  `particles` and `steps` and the most expensive coupling the tree's OpenAPI schema allows, a new
  seed each time, so nothing is cached), back to back.

The abusers share 127.0.0.1 (one machine), or with `--spread` each has a loopback address of its
own (127.0.1.x: a distributed attack, which per-address limits cannot single out). They run in a
process of their own, so their HTTP clients (httpx builds a new client per flood request) cannot
delay the learner's own event loop and inflate what it measures; on this machine their CPU still
competes with the server's (a remote attacker's would not), which makes the figures pessimistic.
The note under the table gives the attack's rate, to compare runs.

The learner, meanwhile: submits a correct `cfm_loss` again and again (one at a time, as the page
allows); requests a chapter simulation cached (the same request) and uncached (a new seed); reads
its chapter page every 50 ms. Targets (issue 11): submission graded p95 <= 5 s, simulations
p95 <= 2 s (cached and uncached), pages p99 <= 100 ms. Prints a table; asserts nothing. The
simulation targets depend on the simulation cost cap (a separate change); this script measures
whatever the tree has.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import load_average, table  # noqa: E402
from grader import SOLUTION as GOOD  # noqa: E402  (bench/grader.py's correct cfm_loss)
from web import free_port, percentile  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BUILD = "c4-build-cfm-loss"
LEARNER_ADDRESS = "127.0.0.2"
LOOP = "import torch\n\ndef cfm_loss(model, x_1, noise_fn=None):\n    while True:\n        pass\n"
JSON = {"Accept": "application/json"}
LEARNER_SIM = ("particles-flow", {})  # chapter 0's own request
LEARNER_TIMEOUT_S = 30.0  # an answer later than this counts as a failure


def start(data: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRAIGHTLINE_")}
    env["STRAIGHTLINE_DATA_DIR"] = str(data)
    process = subprocess.Popen(
        [sys.executable, "-m", "straightline.web.server", "--port", str(port), "--db", f"sqlite:///{data / 'p.db'}"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/api/sims/velocity-field?grid=3", timeout=300).raise_for_status()  # models loaded
            return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    raise SystemExit("the server did not start within 300 s")


def heaviest_simulation(url: str) -> dict[str, object]:
    """particles-flow's most expensive parameters, as this tree's OpenAPI schema states them."""
    spec = httpx.get(url + "/openapi.json").json()
    params: dict[str, object] = {}
    for p in spec["paths"]["/api/sims/particles-flow"]["get"]["parameters"]:
        schema = p.get("schema", {})
        if p["name"] in ("particles", "steps") and "maximum" in schema:
            params[p["name"]] = schema["maximum"]
        elif p["name"] == "coupling" and "exact_ot" in schema.get("enum", []):
            params["coupling"] = "exact_ot"
    return params


def client(url: str, address: str, timeout: float = 300) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(base_url=url, transport=transport, timeout=timeout)


async def clear_gates(c: httpx.AsyncClient, gates: list[str]) -> None:
    for gate in gates:
        await c.post(f"/elements/{gate}/checkpoint", data={"answer": "because " * 40}, headers=JSON)


class Abusers:
    def __init__(self, url: str, gates: list[str], heavy: dict[str, object], spread: bool):
        self.url, self.gates, self.heavy, self.spread = url, gates, heavy, spread
        self.stop = asyncio.Event()
        self.counts = {"flood 200": 0, "flood 429": 0, "flood other": 0, "heavy 200": 0, "heavy refused": 0, "errors": 0}

    async def forever(self, attack) -> None:
        """Run `attack()` until told to stop; a failed request (timeout, reset) is counted and retried."""
        while not self.stop.is_set():
            try:
                await attack()
            except httpx.HTTPError:
                self.counts["errors"] += 1

    def address(self, k: int) -> str:
        return f"127.0.1.{k + 1}" if self.spread else "127.0.0.1"

    async def flood(self, k: int) -> None:
        async def once() -> None:
            async with client(self.url, self.address(k)) as c:  # a fresh client: a new learner every time
                await clear_gates(c, self.gates)
                r = await c.post(f"/elements/{BUILD}/submission", data={"code": LOOP}, headers=JSON)
            self.counts[{200: "flood 200", 429: "flood 429"}.get(r.status_code, "flood other")] += 1
            if r.status_code != 200:
                await asyncio.sleep(0.2)

        await self.forever(once)

    async def heavy_sims(self, k: int) -> None:
        async def once() -> None:
            async with client(self.url, self.address(100 + k)) as c:
                query = urlencode({**self.heavy, "seed": random.randrange(2**31)})
                r = await c.get(f"/api/sims/particles-flow?{query}")
            self.counts["heavy 200" if r.status_code == 200 else "heavy refused"] += 1
            if r.status_code != 200:
                await asyncio.sleep(0.2)

        await self.forever(once)


class Learner:
    """The well-behaved learner: latencies (seconds) and answers that were not 200."""

    def __init__(self, url: str, gates: list[str], page: str):
        self.url, self.gates, self.page = url, gates, page
        self.samples: dict[str, list[float]] = {"grade": [], "sim cached": [], "sim uncached": [], "page": []}
        self.failures: dict[str, int] = dict.fromkeys(self.samples, 0)

    async def timed(self, kind: str, request) -> None:
        started = time.perf_counter()
        try:
            r = await request
        except httpx.TimeoutException:  # no answer within LEARNER_TIMEOUT_S: a failure
            self.failures[kind] += 1
            return
        ok = r.status_code == 200 and (kind != "grade" or r.json()["result"]["status"] == "passed")
        if ok:
            self.samples[kind].append(time.perf_counter() - started)
        else:
            self.failures[kind] += 1
            await asyncio.sleep(0.5)

    async def run(self, seconds: float) -> None:
        stop = time.monotonic() + seconds
        async with client(self.url, LEARNER_ADDRESS, timeout=LEARNER_TIMEOUT_S) as c:
            await clear_gates(c, self.gates)
            sim, params = LEARNER_SIM

            async def loop(kind: str, make, pause: float) -> None:
                while time.monotonic() < stop:
                    await self.timed(kind, make())
                    await asyncio.sleep(pause)

            await asyncio.gather(
                loop("grade", lambda: c.post(f"/elements/{BUILD}/submission", data={"code": GOOD}, headers=JSON), 0.5),
                loop("sim cached", lambda: c.get(f"/api/sims/{sim}?{urlencode({**params, 'seed': 1})}"), 0.5),
                loop("sim uncached", lambda: c.get(f"/api/sims/{sim}?{urlencode({**params, 'seed': random.randrange(2**31)})}"), 0.5),
                loop("page", lambda: c.get(self.page), 0.05),
            )


TARGETS = {"grade": ("p95", 95, 5.0), "sim cached": ("p95", 95, 2.0), "sim uncached": ("p95", 95, 2.0), "page": ("p99", 99, 0.1)}


def rows(quiet: Learner, attacked: Learner) -> list[tuple]:
    out = []
    for kind, (name, q, target) in TARGETS.items():
        cells = []
        for learner in (quiet, attacked):
            s = learner.samples[kind]
            cells.append(f"{percentile(s, q) * 1000:.0f}" if s else "-")
            cells.append(f"{len(s)}/{learner.failures[kind]}")
        s = attacked.samples[kind]
        ok = bool(s) and percentile(s, q) <= target and attacked.failures[kind] == 0
        out.append((f"{kind} {name} (ms)", f"<= {target * 1000:.0f}", *cells, "meets" if ok else "MISSES"))
    return out


def attack(url: str, args: argparse.Namespace, gates: list[str], heavy: dict[str, object], stop, counts) -> None:
    """The abusers, in a process of their own (see the module's docstring)."""

    async def main() -> None:
        abusers = Abusers(url, gates, heavy, args.spread)
        tasks = [asyncio.ensure_future(abusers.flood(k)) for k in range(args.flood)]
        tasks += [asyncio.ensure_future(abusers.heavy_sims(k)) for k in range(args.heavy)]
        while not stop.is_set():
            await asyncio.sleep(0.1)
        abusers.stop.set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        counts.update(abusers.counts)

    asyncio.run(main())


def measure(url: str, args: argparse.Namespace, gates: list[str], page: str, heavy: dict[str, object]) -> tuple[Learner, Learner, dict]:
    quiet = Learner(url, gates, page)
    asyncio.run(quiet.run(args.quiet_seconds))
    with multiprocessing.Manager() as manager:
        stop, counts = manager.Event(), manager.dict()
        attackers = multiprocessing.Process(target=attack, args=(url, args, gates, heavy, stop, counts))
        attackers.start()
        time.sleep(3)  # the attack is under way before the learner starts
        attacked = Learner(url, gates, page)
        asyncio.run(attacked.run(args.seconds))
        stop.set()
        attackers.join(60)
        return quiet, attacked, dict(counts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the learner is measured under attack")
    parser.add_argument("--quiet-seconds", type=float, default=20.0, help="how long it is measured alone first")
    parser.add_argument("--flood", type=int, default=20, help="anonymous clients submitting infinite loops")
    parser.add_argument("--heavy", type=int, default=8, help="clients requesting maximum-cost simulations")
    parser.add_argument("--spread", action="store_true", help="every abuser on a loopback address of its own")
    args = parser.parse_args(argv)
    print(f"bench/abuse.py on {os.cpu_count()} cores; load average before: {load_average()}")
    from straightline.course.content import load_course

    course = load_course()
    chapter = course.chapters[course.elements[BUILD].chapter]
    gates = [e.id for e in chapter.elements if e.type == "checkpoint"]
    with tempfile.TemporaryDirectory() as tmp:
        process, url = start(Path(tmp))
        try:
            heavy = heaviest_simulation(url)
            quiet, attacked, counts = measure(url, args, gates, f"/chapters/{chapter.slug}", heavy)
        finally:
            os.killpg(process.pid, signal.SIGKILL)
    where = "each on its own loopback address" if args.spread else "all from 127.0.0.1"
    print(table(
        f"the learner (from {LEARNER_ADDRESS}) alone, then while {args.flood} clients flood grading and "
        f"{args.heavy} request particles-flow {urlencode(heavy)} ({where})",
        ["metric", "target", "alone", "n ok/failed", "attacked", "n ok/failed", "verdict"],
        rows(quiet, attacked),
        [f"abusers' answers: {counts} ({sum(counts.values()) / args.seconds:.1f} requests/s)",
         f"a failure is an answer that is not 200 (for grading: not 'passed') or none within {LEARNER_TIMEOUT_S:.0f} s; "
         "failed requests are not in the percentiles",
         f"load average after: {load_average()}"],
    ))
    return 0


if __name__ == "__main__":
    sys.exit(main())
