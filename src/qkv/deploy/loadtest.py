"""Concurrent clients against a real ``qkv serve`` process: throughput and latency of one load
phase, and the two phases (micro-batching on, then off) that say what batching buys.

The server runs in its own process (uvicorn on a free loopback port, the graceful SIGTERM path
at exit); the clients are asyncio tasks with httpx in this one. A phase runs ``seconds`` and then
stops: clients start no new request after the deadline and the ones in flight finish. Latency is
per request, from send to the last byte of the answer; ``errors_by_status`` counts every non-200
answer, and ``transport`` the requests that got no HTTP answer at all.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import httpx

SERVER = """
import json, sys, torch, uvicorn
from qkv.deploy.serve import ServeSettings, create_app, open_engine
checkpoint, port, threads, settings = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
torch.set_num_threads(threads)
app = create_app(open_engine(checkpoint), ServeSettings(**settings))
uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", timeout_graceful_shutdown=30)
"""
BodyOf = Callable[[random.Random], dict[str, Any]]  # a client's random stream → one /translate body


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``qkv.deploy.serve`` in a subprocess on ``threads`` torch threads; SIGTERM at exit."""

    def __init__(self, checkpoint: Path, settings: dict[str, Any], threads: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER, str(checkpoint), str(self.port), str(threads),
                                      json.dumps(settings)], env=env, stdout=subprocess.DEVNULL)

    def __enter__(self) -> "Server":
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with code {self.proc.returncode} before it was ready")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("the server did not answer /healthz within 120 s")

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def percentiles(latencies_ms: list[float]) -> dict[str, float | None]:
    """Nearest-rank p50 / p95 / p99 (None when nothing was measured)."""
    ordered = sorted(latencies_ms)
    pick = lambda q: round(ordered[max(0, -(-len(ordered) * q // 100) - 1)], 2) if ordered else None  # noqa: E731
    return {"p50": pick(50), "p95": pick(95), "p99": pick(99)}


async def client_loop(client: httpx.AsyncClient, body_of: BodyOf, rng: random.Random, deadline: float,
                      latencies: list[float], statuses: Counter) -> None:
    """One client: a request, then the next as soon as it is answered, until the deadline."""
    while time.monotonic() < deadline:
        start = time.perf_counter()
        try:
            r = await client.post("/translate", json=body_of(rng))
            statuses[r.status_code] += 1
            if r.status_code == 200:
                latencies.append((time.perf_counter() - start) * 1000)
        except httpx.TransportError:
            statuses["transport"] += 1


async def load_phase(url: str, clients: int, seconds: float, body_of: BodyOf) -> dict[str, Any]:
    """``clients`` concurrent clients for ``seconds``; what they got, and the server's /metrics after."""
    latencies: list[float] = []
    statuses: Counter = Counter()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        start = time.monotonic()
        await asyncio.gather(*(client_loop(client, body_of, random.Random(i), start + seconds, latencies,
                                           statuses) for i in range(clients)))
        elapsed = time.monotonic() - start
        server = (await client.get("/metrics")).json()
    return {"requests": sum(statuses.values()), "ok": statuses[200], "seconds": round(elapsed, 2),
            "throughput_rps": round(statuses[200] / elapsed, 2), "latency_ms": percentiles(latencies),
            "errors_by_status": {str(k): v for k, v in statuses.items() if k != 200},
            "server_batch_sizes": server["batch_sizes"], "server_latency_ms": server["latency_ms"]}


def batching_phases(max_batch: int, window_ms: float) -> dict[str, dict[str, Any]]:
    """The server settings of the two phases: micro-batching on, and off (batch 1, no window)."""
    return {"batching_on": {"max_batch": max_batch, "window_ms": window_ms},
            "batching_off": {"max_batch": 1, "window_ms": 0.0}}


def on_over_off(result: dict[str, Any]) -> float | None:
    """Throughput with micro-batching over throughput without (None when nothing was served without)."""
    off = result["batching_off"]["throughput_rps"]
    return round(result["batching_on"]["throughput_rps"] / off, 2) if off else None


def served_throughput(checkpoint: Path, body_of: BodyOf, *, clients: int, seconds: float, threads: int = 1,
                      max_batch: int = 16, window_ms: float = 5.0, max_queue: int = 64) -> dict[str, Any]:
    """Both phases, each on a fresh server: {phase: settings + load_phase's numbers}, and the ratio."""
    result: dict[str, Any] = {}
    for name, settings in batching_phases(max_batch, window_ms).items():
        with Server(checkpoint, {"max_queue": max_queue, "timeout_s": 60.0, **settings}, threads) as server:
            result[name] = {"settings": settings, **asyncio.run(load_phase(server.url, clients, seconds, body_of))}
    return {**result, "throughput_ratio_on_over_off": on_over_off(result)}


__all__ = ["Server", "free_port", "percentiles", "load_phase", "batching_phases", "on_over_off", "served_throughput"]
