"""Latency of the course app under load: chapter page GETs and element POSTs, 1 and 20 clients.

    python bench/web.py [--requests 1000] [--chapter cfm] [--db URL] [--clients 1,20] [--client raw,httpx] [--startup 3]

First, the start-up time: launch to first page, on a fresh data directory and on a later start.

Starts a real server process (`python -m straightline.web.server`, uvicorn, one process) on a free
loopback port with a throw-away SQLite file (or --db). Each client has its own keep-alive
connection and its own learner cookie and sends requests back to back (closed loop, no think time).
Two load generators, both in one process beside the server:

- raw:   asyncio streams speaking HTTP/1.1 directly; costs the client ~0.1 ms a request, so the
         numbers are the server's;
- httpx: one thread per client with an httpx.Client; httpx spends a few ms of CPU per request,
         which on a 2-core machine competes with the server, so these numbers include the client.

Prints p50/p99/mean latency and throughput per scenario. Target: chapter page p99 <= 50 ms at 20
clients on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir: Path, db: str, cpus: set[int] | None = None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRAIGHTLINE_")}
    env["STRAIGHTLINE_DATA_DIR"] = str(data_dir)
    process = subprocess.Popen(
        [sys.executable, "-m", "straightline.web.server", "--port", str(port), "--db", db],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the server did not start")


def time_to_first_page(data_dir: Path, db: str) -> float:
    """Seconds from launching `python -m straightline.web.server` until GET / answers 200."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRAIGHTLINE_")}
    env["STRAIGHTLINE_DATA_DIR"] = str(data_dir)
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "straightline.web.server", "--port", str(port), "--db", db],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        while time.perf_counter() - started < 180:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200:
                    return time.perf_counter() - started
            except httpx.HTTPError:
                time.sleep(0.02)
        raise SystemExit("the server did not answer within 180 s")
    finally:
        os.killpg(process.pid, 9)  # the server and anything it started (sandboxed workers)
        process.wait()
        time.sleep(1.0)


def startup_table(repeats: int) -> None:
    """First start (fresh data dir: the course is rendered, templates compiled) and later starts."""
    with tempfile.TemporaryDirectory(prefix="straightline-startup-") as tmp:
        firsts, laters = [], []
        for k in range(repeats):
            data = Path(tmp) / f"data{k}"
            db = f"sqlite:///{Path(tmp) / f'progress{k}.db'}"
            firsts.append(time_to_first_page(data, db))
            laters.append(time_to_first_page(data, db))
        print(f"start-up: launch to first page (GET / = 200), median of {repeats} [min-max]; target later starts < 3 s")
        for name, xs in (("first start (fresh data dir)", firsts), ("later start (cached course and templates)", laters)):
            print(f"  {name:<44} {statistics.median(xs):6.2f} s  [{min(xs):.2f}-{max(xs):.2f}]")
        print(f"  load average now: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def run(url: str, clients: int, total: int, make_request: Callable[[httpx.Client, int], httpx.Response]) -> dict[str, float]:
    """`total` requests spread over `clients` threads, each with its own connection and learner."""
    latencies: list[float] = []
    lock = threading.Lock()
    per_client = max(1, total // clients)
    sessions = []
    for _ in range(clients):
        session = httpx.Client(base_url=url, timeout=30)
        session.get("/healthz")
        session.get("/")  # gets the learner cookie
        sessions.append(session)
    barrier = threading.Barrier(clients + 1)
    failures: list[str] = []

    def worker(session: httpx.Client) -> None:
        mine: list[float] = []
        barrier.wait()
        for i in range(per_client):
            t0 = time.perf_counter()
            response = make_request(session, i)
            mine.append(time.perf_counter() - t0)
            if response.status_code >= 400:
                failures.append(f"{response.status_code} {response.text[:200]}")
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(s,)) for s in sessions]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    for s in sessions:
        s.close()
    if failures:
        raise SystemExit(f"{len(failures)} requests failed, e.g. {failures[0]}")
    ms = [x * 1000 for x in latencies]
    return {
        "n": len(ms),
        "p50": statistics.median(ms),
        "p99": percentile(ms, 99),
        "mean": statistics.fmean(ms),
        "rps": len(ms) / wall,
    }


class RawClient:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams (enough for this server)."""

    def __init__(self, host: str, port: int, source: str | None = None):
        self.host, self.port, self.source = host, port, source  # source: a local address to connect from
        self.cookie = ""

    async def connect(self) -> None:
        local = (self.source, 0) if self.source else None
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port, local_addr=local)

    async def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        if self.cookie:
            lines.append(f"Cookie: {self.cookie}")
        if body:
            lines += ["Content-Type: application/x-www-form-urlencoded", f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"set-cookie" and not self.cookie:
                self.cookie = value.strip().split(b";")[0].decode("latin-1")
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


def run_raw(url: str, clients: int, total: int, method: str, path: str, make_body: Callable[[int], bytes], headers: dict[str, str]) -> dict[str, float]:
    host, port = url.split("//")[1].split(":")
    per_client = max(1, total // clients)

    async def go() -> tuple[list[float], float]:
        conns = [RawClient(host, int(port)) for _ in range(clients)]
        for c in conns:
            await c.connect()
            await c.request("GET", "/")  # the learner cookie
        latencies: list[float] = []
        failures: list[str] = []

        async def worker(c: RawClient) -> None:
            for i in range(per_client):
                t0 = time.perf_counter()
                status, body = await c.request(method, path, make_body(i), headers)
                latencies.append(time.perf_counter() - t0)
                if status >= 400:
                    failures.append(f"{status} {body[:200]!r}")

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in conns))
        wall = time.perf_counter() - t0
        for c in conns:
            c.close()
        if failures:
            raise SystemExit(f"{len(failures)} requests failed, e.g. {failures[0]}")
        return latencies, wall

    latencies, wall = asyncio.run(go())
    ms = [x * 1000 for x in latencies]
    return {"n": len(ms), "p50": statistics.median(ms), "p99": percentile(ms, 99), "mean": statistics.fmean(ms), "rps": len(ms) / wall}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests per row (default 1000)")
    parser.add_argument("--client", default="raw,httpx", help="load generators: raw, httpx or both (default)")
    parser.add_argument("--chapter", default=None, help="chapter slug (default: the largest page)")
    parser.add_argument("--clients", default="1,20")
    parser.add_argument("--db", default=None, help="database URL (default: a throw-away SQLite file)")
    parser.add_argument(
        "--pin", action="store_true",
        help="run the server on CPU 0 and the load generator on CPU 1 (steadier numbers on a busy machine)",
    )
    parser.add_argument("--startup", type=int, default=3, metavar="N",
                        help="start-up repeats (first and later starts; 0 skips; default 3)")
    args = parser.parse_args(argv)
    if args.startup:
        startup_table(args.startup)

    with tempfile.TemporaryDirectory(prefix="straightline-bench-") as tmp:
        db = args.db or f"sqlite:///{Path(tmp) / 'progress.db'}"
        server_cpus = {0} if args.pin else None
        process, url = start_server(Path(tmp) / "data", db, server_cpus)
        if args.pin:
            os.sched_setaffinity(0, {1})
        try:
            home = httpx.get(url + "/").text
            import re

            slugs = list(dict.fromkeys(re.findall(r'href="/chapters/([a-z0-9-]+)"', home)))
            sizes = {s: len(httpx.get(f"{url}/chapters/{s}").content) for s in slugs}
            chapter = args.chapter or max(sizes, key=sizes.get)
            page = httpx.get(f"{url}/chapters/{chapter}").text
            check = re.search(r'action="(/elements/[a-z0-9-]+/check)"', page)
            if check is None:
                raise SystemExit(f"chapter {chapter!r} has no check to post to; pick another with --chapter")
            post_url = check.group(1)
            for _ in range(50):  # warm-up
                httpx.get(f"{url}/chapters/{chapter}")

            option = lambda i: f"option={1 + i % 4}".encode()  # noqa: E731
            fragment = {"X-Straightline-Fragment": "1"}
            json_accept = {"Accept": "application/json"}
            # (name, method, path, body, headers)
            scenarios = [
                (f"GET /chapters/{chapter} ({sizes[chapter] // 1024} KiB page)", "GET", f"/chapters/{chapter}", lambda i: b"", {}),
                (f"POST {post_url} (fragment)", "POST", post_url, option, fragment),
                (f"POST {post_url} (JSON)", "POST", post_url, option, json_accept),
            ]
            clients = [int(c) for c in args.clients.split(",")]
            pinned = "; server pinned to CPU 0, clients to CPU 1" if args.pin else ""
            print(f"server: one uvicorn process, {sa_name(db)}; {os.cpu_count()} CPUs{pinned}; {args.requests} requests per row")
            print(f"{'scenario':<60} {'client':>6} {'conc.':>5} {'p50 ms':>7} {'p99 ms':>7} {'mean ms':>7} {'req/s':>6}")
            for kind in args.client.split(","):
                for name, method, path, body, headers in scenarios:
                    for c in clients:
                        if kind == "raw":
                            r = run_raw(url, c, args.requests, method, path, body, headers)
                        else:
                            def request(s: httpx.Client, i: int, method=method, path=path, body=body, headers=headers) -> httpx.Response:
                                return s.request(method, path, content=body(i) or None, headers={**headers, **({"Content-Type": "application/x-www-form-urlencoded"} if method == "POST" else {})})

                            r = run(url, c, args.requests, request)
                        print(f"{name:<60} {kind:>6} {c:>5} {r['p50']:>7.1f} {r['p99']:>7.1f} {r['mean']:>7.1f} {r['rps']:>6.0f}", flush=True)
        finally:
            process.kill()
            process.wait()
    return 0


def sa_name(db: str) -> str:
    return db.split(":", 1)[0]


if __name__ == "__main__":
    sys.exit(main())
