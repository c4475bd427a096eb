"""Build-It grader latency: one submission, 10 concurrent submissions, and page latency meanwhile.

    .venv/bin/python bench/grader.py            # ~3-5 min on 2 cores
    .venv/bin/python bench/grader.py --quick    # smoke run (fewer repeats)
    .venv/bin/python bench/grader.py --http     # only section 5 (the real app over HTTP)

Every submission is a correct `cfm_loss` graded in the real bubblewrap sandbox, each in a fresh
worker (never reused). Latency is measured from `submit` to the result, as the web page sees it.

Sections
  1  one submission at a time: cold (a worker started for it: torch import included) and warm
     (a pooled worker that imported torch beforehand; the pool is given time to refill between
     submissions, as between a learner's clicks)
  2  bursts of 10 concurrent submissions (max_concurrent = cores), with the default pool
     (warm_workers = cores) and with a pool as large as the burst
  3  page latency of the course app (`straightline.web.app.create_app`, served by uvicorn in the
     same process as the grader) while a burst is graded, against the same app idle; falls back to
     a trivial HTTP server when the app cannot be built
  5  the real app over HTTP: `python -m straightline.web.server` in its own process (its own grader,
     default settings), 10 learners each POST a correct cfm_loss to /elements/{id}/submission at
     once, while another client requests a chapter page every 20 ms: page latency p50/p95/p99/max
     during the burst against the same server idle, and each submission's HTTP latency
  4  targets from the issue

Prints tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import fmt_time, table, verdict  # noqa: E402

from straightline.grader import Grader, GraderSettings  # noqa: E402

SOLUTION = """import torch

def cfm_loss(model, x_1: torch.Tensor, noise_fn=torch.randn_like):
    x_0 = noise_fn(x_1)
    t = torch.rand(x_1.shape[0])
    tb = t.view(-1, *[1] * (x_1.dim() - 1))
    x_t = (1 - tb) * x_0 + tb * x_1
    return ((model(x_t, t) - (x_1 - x_0)) ** 2).mean()
"""


def quantile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    if len(xs) == 1:
        return xs[0]
    pos = q * (len(xs) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def cores() -> int:
    return len(os.sched_getaffinity(0))


def wait_for_warm_pool(grader: Grader, timeout: float = 120.0) -> None:
    """Until every pooled worker is ready (so 'warm' means warm)."""
    pool = grader._pool  # bench only: peeks at the pool to know when it has refilled
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pool is not None and len(pool._slots) >= pool.size and all(t.done() for t in pool._slots):
            return
        time.sleep(0.05)


def single(repeats: int, warm: bool) -> list[float]:
    settings = GraderSettings(warm_workers=1 if warm else 0)
    out = []
    with Grader(settings) as grader:
        for _ in range(repeats):
            if warm:
                wait_for_warm_pool(grader)
            start = time.perf_counter()
            result = grader.grade("cfm_loss", SOLUTION)
            out.append(time.perf_counter() - start)
            assert result.passed, result.message
    return out


async def _burst(grader: Grader, n: int) -> list[float]:
    async def one(i: int) -> float:
        start = time.perf_counter()
        result = await grader.submit(f"bench-{i}-{secrets.token_hex(3)}", "cfm_loss", SOLUTION)
        assert result.passed, result.message
        return time.perf_counter() - start

    return list(await asyncio.gather(*(one(i) for i in range(n))))


def bursts(rounds: int, n: int, warm_workers: int | None) -> tuple[list[float], list[float]]:
    """Per-submission latencies over all rounds, and each round's makespan."""
    latencies, makespans = [], []
    with Grader(GraderSettings(warm_workers=warm_workers)) as grader:
        for _ in range(rounds):
            wait_for_warm_pool(grader)
            start = time.perf_counter()
            latencies += asyncio.run(_burst(grader, n))
            makespans.append(time.perf_counter() - start)
    return latencies, makespans


class PageProbe:
    """Serves a page in this process and requests it every `period` s from a client thread."""

    def __init__(self, period: float = 0.02):
        self.period = period
        self.samples: list[float] = []
        self.errors = 0
        self.kind, self.url, self._server, self._thread = self._serve()
        self._stop = threading.Event()
        self._client: threading.Thread | None = None

    def _serve(self):
        try:
            return self._serve_course_app()
        except Exception as exc:  # noqa: BLE001 - fall back to a trivial server, and say so
            print(f"(course app not available: {type(exc).__name__}: {exc}; using a trivial HTTP server)")
            return self._serve_trivial()

    def _serve_course_app(self):
        import socket

        import uvicorn

        from straightline.web.app import create_app
        from straightline.web.settings import Settings, sqlite_url

        data = Path(tempfile.mkdtemp(prefix="bench-grader-web-"))
        app = create_app(Settings(database_url=sqlite_url(data / "progress.db"), secret_key="b" * 32, data_dir=data))
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(url, timeout=5).read()
                return "course app GET /", url, server, thread
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the course app did not answer within 60 s")

    def _serve_trivial(self):
        import http.server

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        return "trivial HTTP server", f"http://127.0.0.1:{server.server_address[1]}/", server, thread

    def start(self) -> None:
        self.samples, self.errors = [], 0
        self._stop.clear()

        def loop() -> None:
            while not self._stop.is_set():
                start = time.perf_counter()
                try:
                    urllib.request.urlopen(self.url, timeout=10).read()
                    self.samples.append(time.perf_counter() - start)
                except OSError:
                    self.errors += 1
                time.sleep(self.period)

        self._client = threading.Thread(target=loop, daemon=True)
        self._client.start()

    def stop(self) -> list[float]:
        self._stop.set()
        if self._client:
            self._client.join()
        return list(self.samples)

    def close(self) -> None:
        if hasattr(self._server, "should_exit"):
            self._server.should_exit = True
        else:
            self._server.shutdown()


def page_during_burst(n: int, rounds: int) -> tuple[str, list[float], list[float], int]:
    probe = PageProbe()
    try:
        probe.start()
        time.sleep(3)
        idle = probe.stop()
        with Grader(GraderSettings()) as grader:
            wait_for_warm_pool(grader)
            probe.start()
            for _ in range(rounds):
                asyncio.run(_burst(grader, n))
                wait_for_warm_pool(grader)
            busy = probe.stop()
        return probe.kind, idle, busy, probe.errors
    finally:
        probe.close()


class HttpServer:
    """`python -m straightline.web.server` on a free loopback port, with a throw-away data dir."""

    def __init__(self) -> None:
        import socket
        import subprocess

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.data = Path(tempfile.mkdtemp(prefix="bench-grader-http-"))
        env = {k: v for k, v in os.environ.items() if not k.startswith("STRAIGHTLINE_")}
        env["STRAIGHTLINE_DATA_DIR"] = str(self.data)
        self.url = f"http://127.0.0.1:{port}"
        self.log = (self.data / "server.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "straightline.web.server", "--port", str(port), "--db", f"sqlite:///{self.data / 'p.db'}"],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited: {(self.data / 'server.log').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=2).read()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("the server did not answer within 120 s")

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except Exception:  # noqa: BLE001 - bench clean-up
            self.process.kill()
        self.log.close()


def page_during_http_burst(n: int, rounds: int, settle_s: float = 12.0) -> dict[str, object]:
    """Section 5: the real app over HTTP (see the module docstring)."""
    import httpx

    from straightline.course.content import load_course

    course = load_course()
    build = course.elements["c4-build-cfm-loss"]
    chapter = course.chapters[build.chapter]
    gates = [e.id for e in chapter.elements if e.type == "checkpoint"]
    page = f"/chapters/{course.chapters[0].slug}"
    server = HttpServer()
    samples: list[tuple[float, float]] = []  # (start, seconds)
    errors = 0
    stop = threading.Event()

    def probe() -> None:
        nonlocal errors
        while not stop.is_set():
            start = time.perf_counter()
            try:
                urllib.request.urlopen(server.url + page, timeout=30).read()
                samples.append((start, time.perf_counter() - start))
            except OSError:
                errors += 1
            time.sleep(0.02)

    async def learner(i: int) -> tuple[float, str]:
        async with httpx.AsyncClient(base_url=server.url, timeout=300) as c:
            for gate in gates:
                await c.post(f"/elements/{gate}/checkpoint", data={"answer": "because " * 40}, headers={"Accept": "application/json"})
            start = time.perf_counter()
            r = await c.post(f"/elements/{build.id}/submission", data={"code": SOLUTION}, headers={"Accept": "application/json"})
            status = r.json()["result"]["status"] if r.status_code == 200 else f"HTTP {r.status_code}"
            return time.perf_counter() - start, status

    async def burst() -> list[tuple[float, str]]:
        return list(await asyncio.wait_for(asyncio.gather(*(learner(i) for i in range(n))), 600))

    thread = threading.Thread(target=probe, daemon=True)
    windows: list[tuple[float, float]] = []
    submissions: list[float] = []
    statuses: list[str] = []
    try:
        thread.start()
        time.sleep(settle_s)  # start-up: the warm workers import torch, the simulations load their models
        idle_end = time.perf_counter()
        idle_start = idle_end - min(settle_s, 5.0)
        for _ in range(rounds):
            start = time.perf_counter()
            done = asyncio.run(burst())
            windows.append((start, time.perf_counter()))
            submissions += [d for d, _ in done]
            statuses += [s for _, s in done]
            time.sleep(5)  # the pool refills between bursts
    finally:
        stop.set()
        thread.join()
        server.close()
    idle = [d for s, d in samples if idle_start <= s < idle_end]
    busy = [d for s, d in samples if any(a <= s <= b for a, b in windows)]
    return {"idle": idle, "busy": busy, "errors": errors, "submissions": submissions, "statuses": statuses,
            "makespans": [b - a for a, b in windows]}


def row(name: str, xs: list[float]) -> list[str]:
    return [name, str(len(xs)), fmt_time(quantile(xs, 0.5)), fmt_time(quantile(xs, 0.95)), fmt_time(max(xs))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats (smoke run)")
    parser.add_argument("--http", action="store_true", help="only section 5: the real app over HTTP")
    args = parser.parse_args()
    reps = 3 if args.quick else 10
    rounds = 1 if args.quick else 3
    n = 10
    c = cores()
    print(f"grader benchmark: {c} cores, load average {os.getloadavg()[0]:.2f} at start, python {sys.version.split()[0]}")
    if args.http:
        http_section(n, rounds)
        return

    cold = single(reps, warm=False)
    warm = single(reps, warm=True)
    print(
        table(
            "1  one submission (correct cfm_loss, 6 tests)",
            ["scenario", "n", "p50", "p95", "max"],
            [row("cold: worker started for it (torch import)", cold), row("warm: pooled worker, torch imported", warm)],
        )
    )

    default_lat, default_span = bursts(rounds, n, None)
    big_lat, big_span = bursts(rounds, n, n)
    print(
        table(
            f"2  bursts of {n} concurrent submissions, max_concurrent = {c}",
            ["pool", "n", "p50", "p95", "max", "burst makespan (median)"],
            [
                row(f"warm_workers = {c} (default)", default_lat) + [fmt_time(statistics.median(default_span))],
                row(f"warm_workers = {n}", big_lat) + [fmt_time(statistics.median(big_span))],
            ],
            notes=[
                "every submission gets a fresh sandboxed worker; beyond the warm ones each pays a torch import",
                "an idle warm worker holds about 150 MB of private memory",
            ],
        )
    )

    kind, idle, busy, errors = page_during_burst(n, rounds)
    print(
        table(
            f"3  page latency ({kind}, one request every 20 ms), grader in the same process",
            ["while", "requests", "p50", "p95", "p99", "max"],
            [
                ["idle", str(len(idle)), fmt_time(quantile(idle, 0.5)), fmt_time(quantile(idle, 0.95)), fmt_time(quantile(idle, 0.99)), fmt_time(max(idle))],
                [f"{rounds} bursts of {n}", str(len(busy)), fmt_time(quantile(busy, 0.5)), fmt_time(quantile(busy, 0.95)), fmt_time(quantile(busy, 0.99)), fmt_time(max(busy))],
            ],
            notes=[f"failed requests: {errors}"],
        )
    )

    targets = [
        ["one submission p50 <= 2.5 s (warm pool)", fmt_time(quantile(warm, 0.5)), verdict(quantile(warm, 0.5) <= 2.5)],
        ["one submission p50 <= 2.5 s (cold, torch import)", fmt_time(quantile(cold, 0.5)), verdict(quantile(cold, 0.5) <= 2.5)],
        [f"burst of {n}: p50 <= 2.5 s (default pool)", fmt_time(quantile(default_lat, 0.5)), verdict(quantile(default_lat, 0.5) <= 2.5)],
        [f"burst of {n}: p50 <= 2.5 s (pool of {n})", fmt_time(quantile(big_lat, 0.5)), verdict(quantile(big_lat, 0.5) <= 2.5)],
        ["page p99 <= 100 ms during bursts", fmt_time(quantile(busy, 0.99)), verdict(quantile(busy, 0.99) <= 0.1)],
    ]
    http_busy = http_section(n, rounds)
    if http_busy:
        targets.append(
            ["page p99 <= 100 ms during HTTP bursts (real app)", fmt_time(quantile(http_busy, 0.99)), verdict(quantile(http_busy, 0.99) <= 0.1)]
        )
    print(table("4  targets", ["target", "measured", "verdict"], targets))


def http_section(n: int, rounds: int) -> list[float]:
    """Section 5; returns the page latencies during the bursts (empty if the app could not run)."""
    try:
        r = page_during_http_burst(n, rounds)
    except Exception as exc:  # noqa: BLE001 - report and go on: the other sections stand alone
        print(f"(section 5 skipped: {type(exc).__name__}: {exc})")
        return []
    idle, busy, subs = r["idle"], r["busy"], r["submissions"]
    statuses = r["statuses"]
    passed = sum(s == "passed" for s in statuses)

    def page_row(name: str, xs: list[float]) -> list[str]:
        if not xs:
            return [name, "0", "-", "-", "-", "-"]
        return [name, str(len(xs)), fmt_time(quantile(xs, 0.5)), fmt_time(quantile(xs, 0.95)), fmt_time(quantile(xs, 0.99)), fmt_time(max(xs))]

    print(
        table(
            f"5  the real app over HTTP: page latency (a chapter page every 20 ms) during {rounds} burst(s) of {n} submissions",
            ["while", "requests", "p50", "p95", "p99", "max"],
            [page_row("idle (after start-up)", idle), page_row(f"bursts of {n} HTTP submissions", busy)],
            notes=[
                f"submissions over HTTP: p50 {fmt_time(quantile(subs, 0.5))}, p95 {fmt_time(quantile(subs, 0.95))}, "
                f"burst makespan (median) {fmt_time(statistics.median(r['makespans']))}; {passed}/{len(statuses)} passed",
                f"failed page requests: {r['errors']}",
                "server: python -m straightline.web.server, default grader settings (max_concurrent = warm workers = cores)",
            ],
        )
    )
    return busy


if __name__ == "__main__":
    main()
