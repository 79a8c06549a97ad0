"""Webhook intake throughput on loopback: careflow's signed intake beside a bare FastAPI endpoint.

Each server runs under uvicorn on 127.0.0.1 in its own process (in-process threads share
the GIL with the client and measured ~45 ms per request of pure scheduling on a loaded
2-core machine), driven by one httpx client with keep-alive, sequentially, N requests each,
in the same run:

- ``bare``: a FastAPI ``POST`` that parses JSON and answers 202 (the framework floor);
- ``intake (ack)``: ``/v1/intake/webform`` with signature check, replay check, conversion,
  inbox + delivery rows committed (SQLite file, synchronous=FULL), 202; processing off;
- ``intake (full)``: the same plus background processing (customer, routing, case start,
  timeline) after each response.

Prints requests/s, p50/p99 latency, and the ratio to the bare endpoint.

    .venv/bin/python benchmarks/bench_webhook.py [-n 2000] [--db-dir /tmp]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spawn(kind: str, db_dir: Path) -> tuple[str, subprocess.Popen[bytes]]:
    """Start ``kind`` (bare | ack | full) in a child process; wait until it answers."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind, "--port", str(port), "--db-dir", str(db_dir)]
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/openapi.json", timeout=1)
            return url, proc
        except httpx.HTTPError as exc:
            if proc.poll() is not None:
                raise SystemExit(f"server {kind} exited with {proc.returncode}") from exc
            time.sleep(0.1)
    proc.terminate()
    raise SystemExit(f"server {kind} did not start")


def serve_forever(kind: str, port: int, db_dir: Path) -> None:
    import uvicorn

    app = bare_app() if kind == "bare" else intake_app(db_dir, process=kind == "full")[0]
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, ws="none")


def bare_app() -> Any:
    app = FastAPI()

    @app.post("/bare")
    async def bare(request: Request) -> JSONResponse:
        body = json.loads(await request.body())
        return JSONResponse({"status": "accepted", "n": len(body)}, 202)

    return app


def intake_app(db_dir: Path, *, process: bool) -> tuple[Any, Any]:
    """careflow's API on a fresh SQLite file; ``process``: background processing on."""
    from connectors.http.app import ApiSettings, create_app
    from engine.sop.library import load_library
    from engine.store.all_models import load_all
    from engine.store.db import make_engine, sessions

    folder = Path(tempfile.mkdtemp(prefix="careflow-bench-", dir=db_dir))
    engine = make_engine(f"sqlite:///{folder / 'bench.db'}")
    load_all().metadata.create_all(engine)
    library = load_library(ROOT / "tests" / "channels" / "library")
    app = create_app(
        ApiSettings(
            sessions(engine),
            ["bench-secret"],
            library=library,
            sweep_interval=None,
            process=process,
        )
    )
    return app, engine


def drive(url: str, n: int, *, sign: bool) -> list[float]:
    from connectors.http.signing import signature_header

    latencies = []
    # TCP_NODELAY: httpx writes headers and body separately; without it Nagle + delayed ACK
    # add ~40 ms to every request on loopback and the benchmark measures the kernel
    nodelay = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
    with httpx.Client(timeout=30, transport=nodelay) as client:
        for i in range(n):
            raw = json.dumps(
                {
                    "submission_id": f"s-{i}",
                    "email": f"user{i % 500}@example.org",
                    "subject": "Question",
                    "message": f"Message number {i}",
                }
            ).encode()
            headers = {"Content-Type": "application/json", "Careflow-Delivery": f"d-{i}"}
            if sign:
                headers["Careflow-Signature"] = signature_header(
                    ["bench-secret"], int(time.time()), raw
                )
            start = time.perf_counter()
            r = client.post(url, content=raw, headers=headers)
            latencies.append(time.perf_counter() - start)
            if r.status_code != 202:
                raise SystemExit(f"unexpected {r.status_code}: {r.text}")
    return latencies


def report(name: str, lat: list[float], wall: float, base: float | None) -> float:
    rate = len(lat) / wall
    q = statistics.quantiles(lat, n=100)
    ratio = f"  {rate / base:6.2f}x bare" if base else ""
    p50, p99 = q[49] * 1000, q[98] * 1000
    print(f"{name:<16} {rate:8.0f} req/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms{ratio}")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="requests per endpoint")
    parser.add_argument("--db-dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--serve", choices=["bare", "ack", "full"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_forever(args.serve, args.port, args.db_dir)
        return

    base = None
    for label, kind, path in (
        ("bare FastAPI", "bare", "/bare"),
        ("intake (ack)", "ack", "/v1/intake/webform"),
        ("intake (full)", "full", "/v1/intake/webform"),
    ):
        url, proc = spawn(kind, args.db_dir)
        try:
            if kind == "bare":
                drive(url + path, 50, sign=False)  # warm-up
            t = time.perf_counter()
            lat = drive(url + path, args.n, sign=kind != "bare")
            wall = time.perf_counter() - t
            rate = report(label, lat, wall, base)
            base = base or rate
        finally:
            proc.terminate()
            proc.wait(10)
    print(
        f"(n={args.n} sequential requests each, keep-alive, SQLite in {args.db_dir}, "
        "synchronous=FULL)"
    )


if __name__ == "__main__":
    main()
