"""Latency of the retrieval pages (glossary, search, review, completion) beside a chapter page,
measured in the same run against one real server process, at 1 and 20 clients.

    python bench/retrieval.py [--requests 400] [--clients 1,20] [--db URL]

Uses bench/web.py's server launcher and raw HTTP/1.1 load generator (so the numbers are the
server's). Prints p50/p99 per page and the ratio of each page's p50 to the chapter page's. Also the
bytes of each page (the glossary links make chapter pages a little larger).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from web import run_raw, start_server  # noqa: E402

PAGES = (
    ("chapter (baseline)", "/chapters/cfm"),
    ("glossary", "/glossary"),
    ("search: one word", "/search?q=coupling"),
    ("search: common words", "/search?q=the+velocity"),
    ("search: no hit", "/search?q=zzyzzy"),
    ("review", "/review"),
    ("complete", "/complete"),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--clients", default="1,20")
    parser.add_argument("--db", default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or f"sqlite:///{Path(tmp) / 'bench.db'}"
        process, url = start_server(Path(tmp), db)
        try:
            sizes = {path: len(httpx.get(url + path, timeout=30).content) for _, path in PAGES}
            for clients in (int(c) for c in args.clients.split(",")):
                print(f"\n{clients} client(s), {args.requests} requests per page")
                print(f"{'page':24} {'bytes':>8} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} {'p50 / chapter':>14}")
                base = None
                for name, path in PAGES:
                    r = run_raw(url, clients, args.requests, "GET", path, lambda i: b"", {})
                    base = base or r["p50"]
                    print(f"{name:24} {sizes[path]:8d} {r['p50']:8.2f} {r['p99']:8.2f} {r['rps']:8.0f} {r['p50'] / base:14.2f}")
        finally:
            process.terminate()
            process.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
