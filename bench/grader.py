"""Build-It grader latency: one submission, 10 concurrent submissions, and page latency meanwhile.

    .venv/bin/python bench/grader.py            # ~2-4 min on 2 cores
    .venv/bin/python bench/grader.py --quick    # smoke run (fewer repeats)

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


def row(name: str, xs: list[float]) -> list[str]:
    return [name, str(len(xs)), fmt_time(quantile(xs, 0.5)), fmt_time(quantile(xs, 0.95)), fmt_time(max(xs))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats (smoke run)")
    args = parser.parse_args()
    reps = 3 if args.quick else 10
    rounds = 1 if args.quick else 3
    n = 10
    c = cores()
    print(f"grader benchmark: {c} cores, load average {os.getloadavg()[0]:.2f} at start, python {sys.version.split()[0]}")

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
    print(table("4  targets", ["target", "measured", "verdict"], targets))


if __name__ == "__main__":
    main()
