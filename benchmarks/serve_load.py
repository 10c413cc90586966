"""Load on `qkv serve`: throughput and latency under N concurrent clients, micro-batching on vs off,
and whether the server survives bad clients.

Question: what does dynamic micro-batching buy a small translator under concurrent load, and
does the server stay up and answer every request when clients misbehave? Claim under test:
batching raises throughput (ratio > 1) at equal load, and after malformed JSON, wrong types, a
1 MB body, clients that hang up mid-request and a burst of 10x the queue, ``/healthz`` is still
200 and every request that was sent whole got an HTTP answer (a 2xx, or the 4xx / 429 that says
why not), none a 5xx or a dropped connection.

Rerun (from the repository root; one JSON object on stdout, and in ``--out``)::

    OMP_NUM_THREADS=1 python -m benchmarks.serve_load                       # 32 clients, 60 s per phase
    OMP_NUM_THREADS=1 python -m benchmarks.serve_load --clients 8 --seconds 10
    python -m benchmarks.serve_load --checkpoint runs/mt/final --beams 4    # a trained translator

The server and the clients are ``qkv.deploy.loadtest``'s (uvicorn in its own process on a free
loopback port, asyncio clients with httpx here); each phase runs ``--seconds`` and then stops. Without ``--checkpoint`` a tiny random-weight
translator (d=32, 2 layers) is written to a temporary folder: the numbers then
measure the server's overhead and batching more than a model.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from qkv.deploy.loadtest import Server, batching_phases, load_phase, on_over_off

SENTENCES = ["Ein Mann fährt Fahrrad.", "Zwei Hunde spielen im Schnee.", "Eine Frau liest ein Buch im Park.",
             "Kinder laufen am Strand.", "Ein Hund.", "Drei Männer stehen vor einem roten Haus und reden."]


def tiny_translator(folder: Path) -> Path:
    """A random-weight translator checkpoint with a byte-level BPE trained on ``SENTENCES``."""
    import torch
    from safetensors.torch import save_model

    from qkv import ModelConfig, build_model
    from qkv.tokenize import ByteBPE

    torch.manual_seed(0)
    cfg = ModelConfig(family="seq2seq", vocab_size=300, d_model=32, n_layers=2, n_heads=2, d_ff=64, max_len=64)
    (folder / "config.json").write_text(json.dumps({"qkv_version": "bench", "model": cfg.to_dict(), "train": {}}))
    save_model(build_model(cfg), str(folder / "model.safetensors"))
    ByteBPE.train(SENTENCES * 3, 300).save(str(folder / "tokenizer.json"))
    return folder


# -- bad clients ------------------------------------------------------------------------------------


async def hang_up(port: int, request: bytes) -> None:
    """Send ``request`` (whole or cut short) on a raw connection and close it without reading."""
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    writer.close()
    await writer.wait_closed()


def raw_post(body: bytes, announced: int | None = None) -> bytes:
    head = (f"POST /translate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {announced if announced is not None else len(body)}\r\n\r\n")
    return head.encode() + body


async def statuses_of(client: httpx.AsyncClient, requests: list[dict[str, Any]]) -> dict[str, int]:
    async def one(kwargs: dict[str, Any]) -> str:
        try:
            return str((await client.post("/translate", **kwargs)).status_code)
        except httpx.TransportError as e:
            return f"transport:{type(e).__name__}"

    return dict(Counter(await asyncio.gather(*map(one, requests))))


async def fault_cases(url: str, port: int, max_queue: int, body_of) -> dict[str, Any]:
    """Each bad client, then a burst of 10x the queue; the answers each got, and /healthz after."""
    rng = random.Random(0)
    valid = json.dumps(body_of(rng)).encode()
    limits = httpx.Limits(max_connections=10 * max_queue + 10)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        cases = {
            "malformed_json": await statuses_of(client, [{"content": b'{"text": "Ein', "headers":
                                                          {"content-type": "application/json"}}] * 10),
            "wrong_types": await statuses_of(client, [{"json": {"text": 5, "beams": "two"}}] * 10),
            "one_megabyte": await statuses_of(client, [{"json": {"text": "x" * 1_000_000}}] * 3),
        }
        await asyncio.gather(*(hang_up(port, raw_post(valid[:10], announced=len(valid))) for _ in range(20)),
                             *(hang_up(port, raw_post(valid)) for _ in range(20)))
        cases["hang_ups"] = {"sent": 40, "then_served": await statuses_of(client, [{"json": body_of(rng)}] * 5)}
        cases["burst_10x_queue"] = await statuses_of(client, [{"json": body_of(rng)} for _ in range(10 * max_queue)])
        health = await client.get("/healthz")
    answered = [c for name, c in cases.items() if name != "hang_ups"] + [cases["hang_ups"]["then_served"]]
    every = all(k.isdigit() and int(k) < 500 for c in answered for k in c)
    return {"cases": cases, "healthz_after": health.status_code, "every_request_answered": every}


# -- the run ------------------------------------------------------------------------------------


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", type=Path, help="a translator checkpoint (default: a tiny random one)")
    p.add_argument("--clients", type=int, default=32, help="concurrent clients (default 32)")
    p.add_argument("--seconds", type=float, default=60, help="length of each load phase (default 60)")
    p.add_argument("--beams", type=int, default=1, help="beam size of every request (default 1)")
    p.add_argument("--max-new-tokens", type=int, default=16, help="new tokens per sentence (default 16)")
    p.add_argument("--max-batch", type=int, default=16, help="batch limit with batching on (default 16)")
    p.add_argument("--window-ms", type=float, default=5.0, help="batching window (default 5)")
    p.add_argument("--max-queue", type=int, default=64, help="server queue; the burst is 10x this (default 64)")
    p.add_argument("--threads", type=int, default=1, help="torch threads in the server (default 1)")
    p.add_argument("--out", type=Path, help="also write the JSON here")
    args = p.parse_args(argv)
    if min(args.clients, args.beams, args.max_new_tokens, args.max_batch, args.max_queue, args.threads) < 1 \
            or args.seconds <= 0 or args.window_ms < 0:
        p.error("counts must be positive, --seconds > 0 and --window-ms >= 0")
    return args


def measure(args: argparse.Namespace, checkpoint: Path) -> dict[str, Any]:
    def body_of(rng: random.Random) -> dict[str, Any]:
        return {"text": rng.choice(SENTENCES), "beams": args.beams, "max_new_tokens": args.max_new_tokens}

    common = {"max_queue": args.max_queue, "timeout_s": 60.0}
    result: dict[str, Any] = {}
    for name, settings in batching_phases(args.max_batch, args.window_ms).items():
        with Server(checkpoint, {**common, **settings}, args.threads) as server:
            result[name] = {"settings": settings, **asyncio.run(load_phase(server.url, args.clients, args.seconds,
                                                                           body_of))}
            if name == "batching_on":
                result["faults"] = asyncio.run(fault_cases(server.url, server.port, args.max_queue, body_of))
    return {**result, "throughput_ratio_on_over_off": on_over_off(result)}


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = args.checkpoint or tiny_translator(Path(tmp))
        result = measure(args, checkpoint)
    report = {"benchmark": "serve_load", "command": "python -m benchmarks.serve_load " + " ".join(sys.argv[1:]),
              "checkpoint": str(args.checkpoint or "tiny random translator (d=32, 2 layers)"),
              "clients": args.clients, "seconds_per_phase": args.seconds, "beams": args.beams,
              "max_new_tokens": args.max_new_tokens, "server_threads": args.threads, "cpus": os.cpu_count(),
              **result, "wall_time_s": round(time.time() - started, 1)}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0 if result["faults"]["every_request_answered"] and result["faults"]["healthz_after"] == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
