"""`qkv serve CHECKPOINT`: the checkpoint's translator or language model over HTTP.

    qkv serve runs/mt/final --port 8000
    curl -s localhost:8000/translate -d '{"text": "Ein Hund läuft.", "beams": 4}' -H 'content-type: application/json'
    qkv serve runs/lm/final --max-batch 32 --window-ms 5 --max-queue 512 --timeout 30

Ctrl-C (or SIGTERM) stops taking connections, lets the requests in flight finish, then exits.
"""

from __future__ import annotations

import argparse

from ..errors import InputError


def check_options(args: argparse.Namespace, settings) -> None:  # noqa: ANN001 - a serve.ServeSettings
    for name in ("max_batch", "max_queue", "max_sentences", "max_body_bytes", "threads"):
        value = getattr(settings, name, getattr(args, name))
        if value is not None and value < 1:
            raise InputError(f"--{name.replace('_', '-')} {value} must be a positive integer")
    if settings.window_ms < 0:
        raise InputError(f"--window-ms {settings.window_ms:g} must be >= 0")
    if settings.timeout_s <= 0:
        raise InputError(f"--timeout {settings.timeout_s:g} must be a positive number of seconds")
    if not 0 <= args.port <= 65535:
        raise InputError(f"--port {args.port} must lie in [0, 65535]")


SETTINGS = ("window_ms", "max_batch", "max_queue", "timeout_s", "max_sentences", "max_body_bytes")


def cmd_serve(args: argparse.Namespace) -> int:
    import torch
    import uvicorn

    from .serve import ServeSettings, create_app, open_engine

    settings = ServeSettings(**{k: getattr(args, k) for k in SETTINGS if getattr(args, k) is not None})
    check_options(args, settings)
    if args.threads:
        torch.set_num_threads(args.threads)
    engine = open_engine(args.checkpoint, args.engine)
    print(f"qkv serve: {engine.config.family} model from {args.checkpoint} on http://{args.host}:{args.port} "
          f"({engine.name}, batches of up to {settings.max_batch}, window {settings.window_ms:g} ms)", flush=True)
    uvicorn.run(create_app(engine, settings), host=args.host, port=args.port, log_level=args.log_level,
                timeout_graceful_shutdown=settings.timeout_s + 5)
    return 0


def add_subparser(subparsers: argparse._SubParsersAction) -> None:
    # the defaults live in serve.ServeSettings; importing it here would load FastAPI for every `qkv` command
    s = subparsers.add_parser("serve", help="serve a translator or language model over HTTP (micro-batched)",
                              description="POST /translate or /generate, GET /healthz and /metrics (JSON).")
    s.add_argument("checkpoint", help="a checkpoint folder, or a run folder (then its final/)")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8000, help="default 8000")
    s.add_argument("--engine", default="torch", help="how the model runs (default torch: PyTorch fp32)")
    s.add_argument("--window-ms", dest="window_ms", type=float, help="batching window in ms (default 5)")
    s.add_argument("--max-batch", type=int, help="sentences or prompts per model call (default 16)")
    s.add_argument("--max-queue", type=int, help="items waiting before requests get 429 (default 256)")
    s.add_argument("--timeout", dest="timeout_s", type=float, help="seconds before a request gets 504 (default 30)")
    s.add_argument("--max-sentences", type=int, help="sentences per /translate request (default 64)")
    s.add_argument("--max-body-bytes", type=int, help="largest request body in bytes (default 262144)")
    s.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    s.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    s.set_defaults(fn=cmd_serve)
