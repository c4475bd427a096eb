"""The simulations API under load: latency, payload sizes, and live training while serving.

    python bench/sims.py [--quick] [--cpus 0,1] [--only particles-flow,euler-steps]

Starts a real server process (`python -m straightline.web.server`, uvicorn, one process), waits
for the shipped models, then measures against it with raw HTTP/1.1 keep-alive clients on asyncio
(`bench/web.py`'s, ~0.1 ms of client CPU a request):

1. latency p50/p99 of each simulation endpoint, at the chapter's parameters, for 1 and 20
   concurrent clients, *cold* (every request a new seed: nothing cached, the model runs) and
   *cached* (the same request again: the server's result cache);
2. payload sizes, raw JSON and gzip (what a browser downloads);
3. live training: steps per second of the 2-D MLP alone, then while 20 clients read simulations
   (half cached, half cold velocity fields);
4. start-up: seconds from launching the server to the first page.

Targets on 2 cores: cold trajectories of 1000 particles x 50 steps <= 100 ms p99 (1 client);
payloads <= 300 KB; live training >= 200 steps/s while serving. Prints tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from web import RawClient, percentile, start_server  # noqa: E402

# (row label, simulation, parameters): the chapters' own requests, plus the 1000 x 50 target
CASES = [
    ("particles-flow 1000x50", "particles-flow", {"particles": 1000, "steps": 50}),
    ("particles-flow (ch 0)", "particles-flow", {}),
    ("digit-emerging (ch 1)", "digit-emerging", {}),
    ("curved-vs-straight (ch 2)", "curved-vs-straight", {}),
    ("mixture-oracle (ch 3)", "mixture-oracle", {}),
    ("velocity-field (ch 4)", "velocity-field", {}),
    ("euler-steps (ch 5)", "euler-steps", {}),
    ("euler-faults (ch 5)", "euler-faults", {"faults": "curved-velocity"}),
    ("solver-orders (ch 5)", "solver-orders", {}),
    ("log-density (ch 1)", "log-density", {}),
]
# the controls a learner changes, at the page's seed: these are served from the shipped precomputed
# table (course/precomputed.py), so their "cached" column is what a change costs
SWITCHES = [
    ("log-density: data -> moons (ch 1)", "log-density", {"dataset": "moons"}),
    ("log-density: coupling -> OT (ch 1)", "log-density", {"coupling": "exact_ot"}),
    ("solver-orders: data -> two clusters (ch 5)", "solver-orders", {"dataset": "two_clusters"}),
]
GZIP = {"Accept": "application/json", "Accept-Encoding": "gzip"}


def learner_address(k: int) -> str:
    """Client k's own loopback address: the clients stand for a class of learners on their own
    machines, so the server's per-address simulation limits (issue 11) apply to each separately."""
    return f"127.0.2.{k + 1}"


def path_for(sim: str, params: dict, seed: int | None = None) -> str:
    p = dict(params)
    if seed is not None:
        p["seed"] = seed
    return f"/api/sims/{sim}" + (f"?{urlencode(p)}" if p else "")


def measure(url: str, clients: int, per_client: int, make_path) -> dict[str, float]:
    host, port = url.split("//")[1].split(":")

    async def go():
        conns = [RawClient(host, int(port), learner_address(k)) for k in range(clients)]
        for c in conns:
            await c.connect()
        latencies: list[float] = []
        failures: list[str] = []

        async def worker(k: int, c: RawClient) -> None:
            for i in range(per_client):
                t0 = time.perf_counter()
                status, body = await c.request("GET", make_path(k, i), headers=GZIP)
                latencies.append(time.perf_counter() - t0)
                if status >= 400:
                    failures.append(f"{status} {body[:200]!r}")

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(k, c) for k, c in enumerate(conns)))
        wall = time.perf_counter() - t0
        for c in conns:
            c.close()
        if failures:
            raise SystemExit(f"{len(failures)} requests failed, e.g. {failures[0]}")
        return latencies, wall

    latencies, wall = asyncio.run(go())
    ms = [x * 1000 for x in latencies]
    return {"n": len(ms), "p50": statistics.median(ms), "p99": percentile(ms, 99), "rps": len(ms) / wall}


_seed = [1000]


def fresh_seeds(count: int) -> int:
    start = _seed[0]
    _seed[0] += count
    return start


def latency_rows(url: str, quick: bool, only: set[str] | None) -> list[tuple]:
    rows = []
    for label, sim, params in CASES:
        if only and sim not in only:
            continue
        # one cold request to learn the cost, so slow simulations get fewer cold repeats
        base = fresh_seeds(1)
        t0 = time.perf_counter()
        with httpx.Client(base_url=url, timeout=600) as c:
            c.get(path_for(sim, params, base), headers=GZIP).raise_for_status()
        cost = time.perf_counter() - t0
        budget = 6.0 if quick else 20.0
        n1 = max(3, min(40, int(budget / max(cost, 1e-3))))
        per20 = max(1, min(3, int(budget / max(cost * 20 / 2, 1e-3))))
        for clients, per_client in ((1, n1), (20, per20)):
            first = fresh_seeds(clients * per_client)
            cold = measure(url, clients, per_client, lambda k, i, first=first, per=per_client: path_for(sim, params, first + k * per + i))
            rows.append((label, "cold", clients, cold))
        cached_path = path_for(sim, params, 7)
        measure(url, 1, 1, lambda k, i: cached_path)  # computed once
        for clients, per_client in ((1, 100 if not quick else 30), (20, 25 if not quick else 10)):
            rows.append((label, "cached", clients, measure(url, clients, per_client, lambda k, i: cached_path)))
        print(f"  measured {label}", file=sys.stderr, flush=True)
    return rows


def switch_rows(url: str, only: set[str] | None) -> list[tuple]:
    """Each SWITCHES request once, as the page sends it after a control changes (seed 0)."""
    rows = []
    with httpx.Client(base_url=url, timeout=600) as c:
        for label, sim, params in SWITCHES:
            if only and sim not in only:
                continue
            t0 = time.perf_counter()
            c.get(path_for(sim, params, 0), headers=GZIP).raise_for_status()
            rows.append((label, 1000 * (time.perf_counter() - t0)))
    return rows


def payload_rows(url: str, only: set[str] | None) -> list[tuple]:
    rows = []
    with httpx.Client(base_url=url, timeout=600) as c:
        for label, sim, params in CASES:
            if only and sim not in only:
                continue
            raw = c.get(path_for(sim, params, 7), headers={"Accept": "application/json", "Accept-Encoding": "identity"}).content
            rows.append((label, len(raw), len(gzip.compress(raw, 5))))
    return rows


def live_rate(url: str, seconds: float, load_clients: int) -> dict[str, float]:
    """Steps/s of one live-training job over `seconds`, with `load_clients` reading simulations."""
    stop = threading.Event()
    host, port = url.split("//")[1].split(":")
    served = [0]

    def load() -> None:
        async def go():
            conns = [RawClient(host, int(port), learner_address(k)) for k in range(load_clients)]
            for c in conns:
                await c.connect()

            async def worker(k: int, c: RawClient) -> None:
                i = 0
                while not stop.is_set():
                    if i % 2:  # a cold, cheap field (a new t each time) ...
                        path = path_for("velocity-field", {"t": round((k * 997 + i) % 1000 / 1000, 3)})
                    else:  # ... and a cached trajectory payload
                        path = path_for("particles-flow", {}, 7)
                    await c.request("GET", path, headers=GZIP)
                    served[0] += 1
                    i += 1

            await asyncio.gather(*(worker(k, c) for k, c in enumerate(conns)))
            for c in conns:
                c.close()

        asyncio.run(go())

    loader = threading.Thread(target=load, daemon=True)
    if load_clients:
        loader.start()
        time.sleep(1.0)
    with httpx.Client(base_url=url, timeout=120, headers={"Accept": "application/json"}) as client:
        client.get("/healthz")
        job = client.post("/api/sims/live-training", json={"dataset": "moons", "steps": 5000, "snapshot_every": 50}).json()
        points: list[tuple[float, int]] = []
        started = time.perf_counter()
        with client.stream("GET", job["events"]) as r:
            for line in r.iter_lines():
                if line.startswith("data:"):
                    event = json.loads(line[5:])
                    if event["type"] != "snapshot":
                        break
                    points.append((event["elapsed"], event["step"]))
                    if time.perf_counter() - started > seconds:
                        break
        client.delete(f"/api/sims/live-training/{job['job']}")
    stop.set()
    if load_clients:
        loader.join(timeout=30)
    # the rate after the first snapshot (start-up and the first batch excluded)
    (t0, s0), (t1, s1) = points[0], points[-1]
    return {"steps_per_s": (s1 - s0) / max(t1 - t0, 1e-9), "window_s": t1 - t0, "served": served[0] / max(t1 - t0, 1e-9)}


def startup(data: Path) -> tuple[float, float]:
    """Seconds from launching the server to its first page, and to its first simulation."""
    t0 = time.perf_counter()
    process, url = start_server(data / "startup", f"sqlite:///{data / 'startup.db'}")
    try:
        first_page = None
        while first_page is None:
            try:
                if httpx.get(url + "/", timeout=5).status_code == 200:
                    first_page = time.perf_counter() - t0
            except httpx.HTTPError:
                time.sleep(0.05)
        httpx.get(url + "/api/sims/velocity-field?grid=3", timeout=300).raise_for_status()
        return first_page, time.perf_counter() - t0
    finally:
        process.kill()
        process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    parser.add_argument("--cpus", default=None, help="pin the server to these CPUs, e.g. 0,1")
    parser.add_argument("--only", default=None, help="comma-separated simulation names")
    parser.add_argument("--live-seconds", type=float, default=8.0)
    args = parser.parse_args(argv)
    cpus = {int(c) for c in args.cpus.split(",")} if args.cpus else None
    only = set(args.only.split(",")) if args.only else None

    with tempfile.TemporaryDirectory(prefix="straightline-bench-sims-") as tmp:
        data = Path(tmp)
        first_page, first_sim = startup(data)
        process, url = start_server(data / "server", f"sqlite:///{data / 'progress.db'}", cpus)
        try:
            httpx.get(url + "/api/sims/velocity-field?grid=3", timeout=300).raise_for_status()  # models loaded
            # the start-up warm-up (the course's own simulations) competes for the CPU: measure after it
            warm_started = time.perf_counter()
            while httpx.get(url + "/healthz", timeout=30).json().get("simulations") == "warming":
                if time.perf_counter() - warm_started > 600:
                    raise SystemExit("the server's warm-up did not finish within 10 minutes")
                time.sleep(0.5)
            warm_s = time.perf_counter() - warm_started
            time.sleep(1.0)
            print(f"server: {url}, pid {process.pid}, cores {os.cpu_count()}"
                  f"{f', pinned to {sorted(cpus)}' if cpus else ''}; torch 1 intra-op thread", flush=True)
            print(f"\nstart-up: first page {first_page:.2f} s after launch; first simulation {first_sim:.1f} s (models loaded in the background);"
                  f" the course's simulations precomputed {warm_s:.1f} s after that\n")

            print("latency (ms) of GET /api/sims/<name>: cold = a new seed every request (the model runs), cached = the same request")
            print(f"{'simulation':28} {'kind':7} {'clients':>7} {'n':>5} {'p50':>9} {'p99':>9} {'req/s':>8}")
            for label, kind, clients, r in latency_rows(url, args.quick, only):
                print(f"{label:28} {kind:7} {clients:7d} {r['n']:5d} {r['p50']:9.1f} {r['p99']:9.1f} {r['rps']:8.1f}", flush=True)

            print("\na learner's change of a control at the page's seed (first request since start, ms)")
            for label, ms in switch_rows(url, only):
                print(f"{label:44} {ms:9.1f}", flush=True)
            print("\npayload per request (KB = 1000 bytes)")
            print(f"{'simulation':28} {'raw':>9} {'gzip':>9}")
            for label, raw, gz in payload_rows(url, only):
                print(f"{label:28} {raw / 1000:9.1f} {gz / 1000:9.1f}")

            print("\nlive training (2-D MLP, batch 256, snapshot every 50 steps)")
            print(f"{'while serving':28} {'steps/s':>9} {'window s':>9} {'sim req/s':>10}")
            for clients in (0, 20):
                r = live_rate(url, args.live_seconds, clients)
                print(f"{f'{clients} simulation clients':28} {r['steps_per_s']:9.0f} {r['window_s']:9.1f} {r['served'] if clients else 0:10.1f}", flush=True)
        finally:
            process.kill()
            process.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
