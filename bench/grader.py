"""Build-It grader latency: one submission, 10 concurrent submissions, and page latency meanwhile.

    .venv/bin/python bench/grader.py            # ~10-15 min on 2 cores
    .venv/bin/python bench/grader.py --quick    # smoke run (fewer repeats)
    .venv/bin/python bench/grader.py --http     # only section 5 (the real app over HTTP), both modes

Every submission is a correct `cfm_loss` graded in the real bubblewrap sandbox, each in a fresh
worker (never reused). Latency is measured from `submit` to the result, as the web page sees it.
Each section measures both sandbox modes: a sandbox per worker (`GraderSettings(fork_server=False)`),
and the fork server (the default: one zygote sandbox imports torch once, each submission is a
child forked from it).

Sections
  1  one submission at a time: cold (a worker started for it: torch import included) and warm
     (a pooled worker that imported torch beforehand; the pool is given time to refill between
     submissions, as between a learner's clicks); fork server: cold (a new grader, so the zygote
     starts for it), a child forked on demand (no pool), a pre-forked child (pool of 1)
  2  bursts of 10 concurrent submissions (max_concurrent = cores): per worker with the default
     pool (warm_workers = cores) and with a pool as large as the burst; fork server with the
     default pool and with none (every child forked on demand; the zygote is up beforehand)
  3  page latency of the course app (`straightline.web.app.create_app`, served by uvicorn in the
     same process as the grader) while bursts are graded back to back (at least 3 bursts and 20 s
     of them), against the same app idle; falls back to a trivial HTTP server when the app cannot
     be built
  5  the real app over HTTP: `python -m straightline.web.server` in its own process (its own grader,
     default settings; STRAIGHTLINE_GRADER_FORK_SERVER=0, then 1), 10 learners, each of whom has
     just cleared the chapter's gates (outside the measured window: ten new learners posting their
     checkpoint answers at once stall a page ~0.5 s in either mode, which is the app's cost, not the
     grader's), POST a correct cfm_loss to /elements/{id}/submission at once (at least 3 bursts and
     20 s of them), while
     another client requests a chapter page every 20 ms: page latency p50/p95/p99/max during the
     bursts against the same server idle, and each submission's HTTP latency
  6  memory (host side, /proc/PID/smaps_rollup): a warm per-worker sandbox, the zygote, an idle
     pre-forked child, and a child while it grades
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


def check_mode(grader: Grader) -> None:
    """Fail loudly if a fork-server grader fell back to a sandbox per worker (the rows would lie)."""
    server = grader.fork_server
    if grader.settings.fork_server:
        assert server is not None and server.active, f"the fork server is not in use: {server and server.unavailable}"


def _graded(grader: Grader) -> float:
    start = time.perf_counter()
    result = grader.grade("cfm_loss", SOLUTION)
    assert result.passed, result.message
    return time.perf_counter() - start


def single(repeats: int, warm: bool, fork: bool = False) -> list[float]:
    """Seconds per submission, one at a time.

    cold: no warm worker (per worker: torch imported for it; fork server: a new grader each time,
    so the zygote starts for it); warm: a pooled worker ready beforehand (fork server: a pre-forked
    child); fork server with warm=None: the zygote is up, the child is forked for the submission.
    """
    settings = GraderSettings(warm_workers=1 if warm else 0, fork_server=fork)
    if fork and warm is False:
        out = []
        for _ in range(repeats):
            with Grader(settings) as grader:
                out.append(_graded(grader))
                check_mode(grader)
        return out
    out = []
    with Grader(settings) as grader:
        if fork:
            _graded(grader)  # the zygote is started by the first submission; not measured
        for _ in range(repeats):
            if warm:
                wait_for_warm_pool(grader)
            out.append(_graded(grader))
        check_mode(grader)
    return out


async def _burst(grader: Grader, n: int) -> list[float]:
    async def one(i: int) -> float:
        start = time.perf_counter()
        result = await grader.submit(f"bench-{i}-{secrets.token_hex(3)}", "cfm_loss", SOLUTION)
        assert result.passed, result.message
        return time.perf_counter() - start

    return list(await asyncio.gather(*(one(i) for i in range(n))))


def bursts(rounds: int, n: int, warm_workers: int | None, fork: bool = False) -> tuple[list[float], list[float]]:
    """Per-submission latencies over all rounds, and each round's makespan."""
    latencies, makespans = [], []
    with Grader(GraderSettings(warm_workers=warm_workers, fork_server=fork)) as grader:
        if fork:
            _graded(grader)  # without a pool nothing starts the zygote before the first burst
        for _ in range(rounds):
            wait_for_warm_pool(grader)
            start = time.perf_counter()
            latencies += asyncio.run(_burst(grader, n))
            makespans.append(time.perf_counter() - start)
        check_mode(grader)
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


def page_during_burst(n: int, rounds: int, busy_s: float, fork: bool = False) -> tuple[str, list[float], list[float], int, int]:
    """Page latencies idle and while bursts are graded: at least `rounds` bursts and `busy_s` seconds
    of them, back to back (fast bursts run more often: the page sees as much grading either way)."""
    probe = PageProbe()
    try:
        probe.start()
        time.sleep(3)
        idle = probe.stop()
        with Grader(GraderSettings(fork_server=fork)) as grader:
            wait_for_warm_pool(grader)
            probe.start()
            start, done = time.perf_counter(), 0
            while done < rounds or time.perf_counter() - start < busy_s:
                asyncio.run(_burst(grader, n))
                wait_for_warm_pool(grader)
                done += 1
            busy = probe.stop()
            check_mode(grader)
        return probe.kind, idle, busy, probe.errors, done
    finally:
        probe.close()


class HttpServer:
    """`python -m straightline.web.server` on a free loopback port, with a throw-away data dir."""

    def __init__(self, fork_server: bool = False) -> None:
        import socket
        import subprocess

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.data = Path(tempfile.mkdtemp(prefix="bench-grader-http-"))
        env = {k: v for k, v in os.environ.items() if not k.startswith("STRAIGHTLINE_")}
        env["STRAIGHTLINE_DATA_DIR"] = str(self.data)
        env["STRAIGHTLINE_GRADER_FORK_SERVER"] = "1" if fork_server else "0"
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


def page_during_http_burst(n: int, rounds: int, busy_s: float, settle_s: float = 12.0, fork: bool = False) -> dict[str, object]:
    """Section 5: the real app over HTTP (see the module docstring): at least `rounds` bursts and
    `busy_s` seconds of them."""
    import httpx

    from straightline.course.content import load_course

    course = load_course()
    build = course.elements["c4-build-cfm-loss"]
    chapter = course.chapters[build.chapter]
    gates = [e.id for e in chapter.elements if e.type == "checkpoint"]
    page = f"/chapters/{course.chapters[0].slug}"
    server = HttpServer(fork_server=fork)
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

    async def ready_learner() -> httpx.AsyncClient:
        """A new learner who has cleared the chapter's gates (before the burst: not part of it)."""
        c = httpx.AsyncClient(base_url=server.url, timeout=300)
        for gate in gates:
            await c.post(f"/elements/{gate}/checkpoint", data={"answer": "because " * 40}, headers={"Accept": "application/json"})
        return c

    async def learner(c: httpx.AsyncClient) -> tuple[float, str]:
        async with c:
            start = time.perf_counter()
            r = await c.post(f"/elements/{build.id}/submission", data={"code": SOLUTION}, headers={"Accept": "application/json"})
            if r.status_code != 200:
                return time.perf_counter() - start, f"HTTP {r.status_code}"
            result = r.json()["result"]
            # a forked child's submission id has 14 characters, a sandbox of its own 16
            kind = "forked" if len(result.get("submission_id", "")) == 14 else "own sandbox"
            return time.perf_counter() - start, f"{result['status']} ({kind})"

    async def burst() -> tuple[float, list[tuple[float, str]]]:
        clients = [await ready_learner() for _ in range(n)]
        await asyncio.sleep(1)
        start = time.perf_counter()
        return start, list(await asyncio.wait_for(asyncio.gather(*(learner(c) for c in clients)), 600))

    thread = threading.Thread(target=probe, daemon=True)
    windows: list[tuple[float, float]] = []
    submissions: list[float] = []
    statuses: list[str] = []
    try:
        thread.start()
        time.sleep(settle_s)  # start-up: the warm workers import torch, the simulations load their models
        idle_end = time.perf_counter()
        idle_start = idle_end - min(settle_s, 5.0)
        while len(windows) < rounds or sum(b - a for a, b in windows) < busy_s:
            start, done = asyncio.run(burst())
            windows.append((start, time.perf_counter()))
            submissions += [d for d, _ in done]
            statuses += [s for _, s in done]
            time.sleep(1 if fork else 5)  # the pool refills between bursts (forked children in milliseconds)
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


MODES = {"per worker": False, "fork server": True}


def pct_row(name: str, xs: list[float]) -> list[str]:
    if not xs:
        return [name, "0", "-", "-", "-", "-"]
    return [name, str(len(xs)), fmt_time(quantile(xs, 0.5)), fmt_time(quantile(xs, 0.95)), fmt_time(quantile(xs, 0.99)), fmt_time(max(xs))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats (smoke run)")
    parser.add_argument("--http", action="store_true", help="only section 5: the real app over HTTP")
    args = parser.parse_args()
    reps = 3 if args.quick else 10
    rounds = 1 if args.quick else 3
    busy_s = 8.0 if args.quick else 20.0  # sections 3 and 5: at least this long under bursts
    n = 10
    c = cores()
    print(f"grader benchmark: {c} cores, load average {os.getloadavg()[0]:.2f} at start, python {sys.version.split()[0]}")
    if args.http:
        for mode, fork in MODES.items():
            http_section(n, rounds, busy_s, mode, fork)
        return

    cold, warm = single(reps, warm=False), single(reps, warm=True)
    fork_cold = single(max(3, reps // 2), warm=False, fork=True)
    fork_forked, fork_warm = single(reps, warm=None, fork=True), single(reps, warm=True, fork=True)
    print(
        table(
            "1  one submission (correct cfm_loss, 6 tests)",
            ["scenario", "n", "p50", "p95", "max"],
            [
                row("per worker, cold: worker started for it (torch import)", cold),
                row("per worker, warm: pooled worker, torch imported", warm),
                row("fork server, cold: zygote started for it (torch import)", fork_cold),
                row("fork server, zygote up: child forked for it (warm_workers = 0)", fork_forked),
                row("fork server, warm: pre-forked child (warm_workers = 1)", fork_warm),
            ],
        )
    )

    burst_rows, burst = [], {}
    for label, fork, pool in (
        ("per worker", False, None),
        ("per worker", False, n),
        ("fork server", True, None),
        ("fork server", True, 0),
    ):
        lat, span = bursts(rounds, n, pool, fork=fork)
        size = f"{c} (default)" if pool is None else str(pool)
        burst[(label, pool)] = lat
        burst_rows.append(row(f"{label}, warm_workers = {size}", lat) + [fmt_time(statistics.median(span))])
    print(
        table(
            f"2  bursts of {n} concurrent submissions, max_concurrent = {c}",
            ["mode, pool", "n", "p50", "p95", "max", "burst makespan (median)"],
            burst_rows,
            notes=[
                "every submission gets a fresh worker: per worker, a sandbox of its own (beyond the warm ones each "
                "pays a torch import); fork server, a child forked from the zygote (no import)",
            ],
        )
    )

    page_rows, busy = [], {}
    for mode, fork in MODES.items():
        kind, idle, busy[mode], errors, done = page_during_burst(n, rounds, busy_s, fork=fork)
        page_rows += [pct_row(f"{mode}: idle", idle), pct_row(f"{mode}: {done} bursts of {n}", busy[mode])]
        page_rows[-1][0] += f" ({errors} failed)" if errors else ""
    print(
        table(
            f"3  page latency ({kind}, one request every 20 ms), grader in the same process, default pool",
            ["while", "requests", "p50", "p95", "p99", "max"],
            page_rows,
        )
    )

    print(memory_section())

    fork_default = burst[("fork server", None)]
    targets = [
        ["one submission p50 <= 2.5 s (per worker, warm pool)", fmt_time(quantile(warm, 0.5)), verdict(quantile(warm, 0.5) <= 2.5)],
        ["one submission p50 <= 2.5 s (per worker, cold)", fmt_time(quantile(cold, 0.5)), verdict(quantile(cold, 0.5) <= 2.5)],
        ["one submission p50 <= 2.5 s (fork server, warm)", fmt_time(quantile(fork_warm, 0.5)), verdict(quantile(fork_warm, 0.5) <= 2.5)],
    ]
    for (label, pool), lat in burst.items():
        size = "default pool" if pool is None else f"pool of {pool}"
        targets.append([f"burst of {n}: p50 <= 2.5 s ({label}, {size})", fmt_time(quantile(lat, 0.5)), verdict(quantile(lat, 0.5) <= 2.5)])
    targets.append([f"burst of {n}: p95 (fork server, default pool)", fmt_time(quantile(fork_default, 0.95)), "(reported)"])
    for mode, xs in busy.items():
        targets.append([f"page p99 <= 100 ms during bursts ({mode})", fmt_time(quantile(xs, 0.99)), verdict(quantile(xs, 0.99) <= 0.1)])
    for mode, fork in MODES.items():
        http_busy = http_section(n, rounds, busy_s, mode, fork)
        if http_busy:
            targets.append(
                [f"page p99 <= 100 ms during HTTP bursts (real app, {mode})", fmt_time(quantile(http_busy, 0.99)), verdict(quantile(http_busy, 0.99) <= 0.1)]
            )
    print(table("4  targets", ["target", "measured", "verdict"], targets))


def _smaps(pid: int) -> dict[str, int]:
    """Rss, Pss and private memory (kB) of one process, from /proc/PID/smaps_rollup."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        fields = {line.split(":")[0]: int(line.split()[1]) for line in f if line.split()[-1] == "kB"}
    return {"rss": fields["Rss"], "pss": fields["Pss"], "private": fields["Private_Clean"] + fields["Private_Dirty"]}


def _pid_of(tag: str, child: bool) -> int:
    """Host pid of a sandbox's interpreter (its command line names `tag`), or of a forked child (named `tag`)."""
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            comm = Path(f"/proc/{entry}/comm").read_text().strip()
            named = comm == tag if child else comm.startswith("python") and tag.encode() in Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if named:
            return int(entry)
    raise LookupError(f"no process for {tag}")


def _memory_while_grading(grader: Grader, child: bool) -> dict[str, int]:
    """The largest footprint of one worker while it grades a (slowed-down) correct solution."""
    pool = grader._pool  # bench only: the worker that will take the next submission
    worker = pool._slots[0].result()
    slow = SOLUTION.replace("    x_0 = noise_fn(x_1)", "    __import__('time').sleep(0.2)\n    x_0 = noise_fn(x_1)")
    future = grader.submit_future("bench-memory", "cfm_loss", slow)
    pid = _pid_of(worker.tag, child) if child else _pid_of(worker.sandbox.tag, False)
    peak = {"rss": 0, "pss": 0, "private": 0}
    while not future.done():
        try:
            peak = {k: max(v, _smaps(pid)[k]) for k, v in peak.items()}
        except OSError:
            break
        time.sleep(0.05)
    assert future.result().passed
    return peak


def memory_section() -> str:
    rows = []

    def add(name: str, m: dict[str, int]) -> None:
        rows.append([name, f"{m['rss'] / 1024:.0f} MB", f"{m['pss'] / 1024:.0f} MB", f"{m['private'] / 1024:.0f} MB"])

    def total(name: str, parts: list[dict[str, int]]) -> None:
        add(name, {k: sum(p[k] for p in parts) for k in ("rss", "pss", "private")})

    with Grader(GraderSettings(warm_workers=2, fork_server=False)) as grader:
        wait_for_warm_pool(grader)
        idle = [_smaps(_pid_of(w.result().sandbox.tag, False)) for w in grader._pool._slots]
        for m in idle:
            add("per worker: warm worker, idle (torch imported)", m)
        total("per worker: the 2 warm workers together", idle)
        add("per worker: worker while grading (peak)", _memory_while_grading(grader, child=False))
    with Grader(GraderSettings(warm_workers=2, fork_server=True)) as grader:
        wait_for_warm_pool(grader)
        check_mode(grader)
        zygote = _smaps(_pid_of(grader.fork_server.zygote.sandbox.tag, False))
        children = [_smaps(_pid_of(w.result().tag, True)) for w in grader._pool._slots]
        add("fork server: zygote (torch imported, 2 children alive)", zygote)
        for m in children:
            add("fork server: pre-forked child, idle", m)
        total("fork server: zygote + the 2 pre-forked children together", [zygote] + children)
        add("fork server: child while grading (peak)", _memory_while_grading(grader, child=True))
    return table(
        "6  memory of one worker (host side, /proc/PID/smaps_rollup)",
        ["process", "RSS", "PSS", "private"],
        rows,
        notes=[
            "PSS splits each shared page among the processes sharing it; private = pages no other process maps;",
            "the sum of PSS is what a group of processes costs together (RSS counts shared pages once per process)",
            "a forked child shares the zygote's pages (torch, copy-on-write) until it writes to them",
        ],
    )


def http_section(n: int, rounds: int, busy_s: float, mode: str, fork: bool) -> list[float]:
    """Section 5 for one sandbox mode; returns the page latencies during the bursts (empty if the app could not run)."""
    try:
        r = page_during_http_burst(n, rounds, busy_s, fork=fork)
    except Exception as exc:  # noqa: BLE001 - report and go on: the other sections stand alone
        print(f"(section 5, {mode}, skipped: {type(exc).__name__}: {exc})")
        return []
    subs, statuses = r["submissions"], r["statuses"]
    counts = {status: statuses.count(status) for status in sorted(set(statuses))}
    print(
        table(
            f"5  the real app over HTTP ({mode}): page latency (a chapter page every 20 ms) during {len(r['makespans'])} bursts of {n} submissions",
            ["while", "requests", "p50", "p95", "p99", "max"],
            [pct_row("idle (after start-up)", r["idle"]), pct_row(f"bursts of {n} HTTP submissions", r["busy"])],
            notes=[
                f"submissions over HTTP: p50 {fmt_time(quantile(subs, 0.5))}, p95 {fmt_time(quantile(subs, 0.95))}, "
                f"burst makespan (median) {fmt_time(statistics.median(r['makespans']))}",
                "results: " + ", ".join(f"{k}: {v}" for k, v in counts.items()),
                f"failed page requests: {r['errors']}",
                f"server: python -m straightline.web.server, default grader settings (max_concurrent = warm workers = cores), "
                f"STRAIGHTLINE_GRADER_FORK_SERVER={int(fork)}",
            ],
        )
    )
    return r["busy"]


if __name__ == "__main__":
    main()
