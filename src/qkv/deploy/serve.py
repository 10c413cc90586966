"""``qkv serve``: a checkpoint behind HTTP, with concurrent requests micro-batched.

    POST /translate   {"text": "Ein Hund." | [...], "beams": 4, "max_new_tokens": null, "length_alpha": 0.6,
                       "truncate": false}
    POST /generate    {"prompt": "ROMEO:", "max_new_tokens": 64, "do_sample": true, "temperature": 0.8,
                       "top_k": null, "top_p": null, "repetition_penalty": 1.0, "seed": null}
    GET  /healthz     {"status": "ok", ...}, 503 while shutting down
    GET  /metrics     requests, latency p50/p95/p99, queue depth, batch sizes seen

Bad input is a 4xx whose ``error`` names the problem: 413 for a body over the size limit, 422
for a wrong type or a missing field, empty text, a text over the model's limit or a setting out
of range (the same checks, with the same limits and words, as ``qkv.generate``), 404 for the
endpoint of the other model family. 429 means the queue is full (retry later), 504 that the
answer took longer than the server's timeout, 503 that the server is shutting down.

Each sentence or prompt is one item for the :class:`~qkv.deploy.batcher.MicroBatcher`; items
share a model call only when that cannot change their answer: equal decoding settings (the
batch key), a sampling request with a ``seed`` alone (its random stream is its own), and a
prompt that the model would crop (``prompt + max_new_tokens > max_len``) alone, since padding
it beside others would crop it differently.

The model runs behind an ``Engine``: ``run(rows, settings)`` from token ids to new token ids.
:class:`TorchEngine` is PyTorch fp32; other engines (reduced precision, ONNX Runtime,
CTranslate2) are other entries of :data:`ENGINES`.
"""

from __future__ import annotations

import math
import time
from collections import Counter, deque
from contextlib import asynccontextmanager
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Any, Callable, Protocol

import torch
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException
from torch import Tensor

from ..config import ModelConfig
from ..errors import InputError, QkvError
from ..generate import generate
from ..generate.checks import check_settings, context_window
from .batcher import Closed, MicroBatcher, QueueFull

# -- engines ------------------------------------------------------------------------------------


class Engine(Protocol):
    """What the server needs from a model: its config, its tokenizer, and batched decoding."""

    name: str
    config: ModelConfig
    tokenizer: Any

    def run(self, rows: list[list[int]], settings: dict[str, Any]) -> list[list[int]]:
        """New token ids for each row (source or prompt ids), up to and without EOS."""


def pad_rows(rows: list[list[int]], pad_id: int, *, left: bool) -> tuple[Tensor, Tensor]:
    """ids ``(B, T)`` padded on the left (prompts) or right (sources) and mask ``(B, T)``, True = real."""
    T = max(map(len, rows))
    ids = torch.full((len(rows), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), T), dtype=torch.bool)
    for r, row in enumerate(rows):
        span = slice(T - len(row), T) if left else slice(0, len(row))
        ids[r, span], mask[r, span] = torch.tensor(row), True
    return ids, mask


def until_eos(tokens: list[int], eos_id: int) -> list[int]:
    return tokens[: tokens.index(eos_id)] if eos_id in tokens else tokens


class TorchEngine:
    """The model in PyTorch (fp32, bf16 or int8 linears), through :func:`qkv.generate.generate`."""

    name = "torch-fp32"

    def __init__(self, model: torch.nn.Module, tokenizer: Any) -> None:
        self.model, self.tokenizer, self.config = model.eval(), tokenizer, model.config

    def run(self, rows: list[list[int]], settings: dict[str, Any]) -> list[list[int]]:
        prompts = self.config.family != "seq2seq"
        ids, mask = pad_rows(rows, self.config.pad_id, left=prompts)
        with torch.inference_mode():
            out = generate(self.model, ids, mask, **settings)  # (B, L) seq2seq, (B, T + L) lm
        new = out[:, ids.shape[1]:] if prompts else out
        return [until_eos(row, self.config.eos_id) for row in new.tolist()]


def open_torch_engine(checkpoint: str | Path, precision: str | None = None) -> TorchEngine:
    """The checkpoint in PyTorch: fp32 (an int8 checkpoint as int8), or at ``precision``."""
    from ..checkpoint import read_config
    from ..tasks.run import checkpoint_folder
    from .precision import open_model

    family = read_config(checkpoint_folder(checkpoint))["model"].get("family")
    if family not in ("seq2seq", "lm"):
        raise InputError(f"{checkpoint} holds a {family!r} model; qkv serve serves translators (seq2seq) "
                         f"and language models (lm)")
    model, tok, _ = open_model(checkpoint, family=family, command="qkv serve", precision=precision)
    engine = TorchEngine(model, tok)
    engine.name = f"torch-{precision or 'fp32'}"
    return engine


def open_ct2_engine(ct2_dir: str | Path) -> Engine:
    """A CTranslate2 export (``qkv export --to ctranslate2``) behind the same protocol."""
    from .ct2_export import CT2Engine

    return CT2Engine(ct2_dir)


ENGINES: dict[str, Callable[[str | Path], Engine]] = {
    "torch": open_torch_engine,
    "torch-bf16": lambda checkpoint: open_torch_engine(checkpoint, "bf16"),
    "torch-int8": lambda checkpoint: open_torch_engine(checkpoint, "int8"),
    "ctranslate2": open_ct2_engine,  # a folder written by `qkv export --to ctranslate2`
}


def open_engine(checkpoint: str | Path, engine: str = "torch") -> Engine:
    if engine not in ENGINES:
        raise InputError(f"engine {engine!r} is not one of {', '.join(ENGINES)}")
    return ENGINES[engine](checkpoint)


# -- requests -----------------------------------------------------------------------------------


class TranslateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    text: str | list[str]
    beams: int = 4
    max_new_tokens: int | None = None  # default: as many as the model's positions allow (max_len - 1)
    length_alpha: float = 0.6
    truncate: bool = False  # cut a sentence over the model's limit instead of refusing it


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    prompt: str
    max_new_tokens: int = 64
    do_sample: bool = True
    temperature: float = 0.8
    top_k: int | None = None
    top_p: float | None = None
    repetition_penalty: float = 1.0
    seed: int | None = None


@dataclass(frozen=True)
class ServeSettings:
    window_ms: float = 5.0  # how long the worker waits for more requests to share a batch
    max_batch: int = 16  # items (sentences or prompts) per model call
    max_queue: int = 256  # items waiting; beyond it a request gets 429
    timeout_s: float = 30.0  # beyond it a request gets 504
    max_sentences: int = 64  # per /translate request
    max_body_bytes: int = 256 * 1024  # beyond it a request gets 413


class HTTPError(Exception):
    def __init__(self, status: int, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.status, self.hint = status, hint


def error_body(message: str, hint: str | None = None) -> dict[str, str]:
    return {"error": message, **({"hint": hint} if hint else {})}


def texts_of(req: TranslateRequest, limit: int) -> list[str]:
    texts = [req.text] if isinstance(req.text, str) else req.text
    if not texts:
        raise HTTPError(422, "text is an empty list; give one sentence or a list of sentences")
    if len(texts) > limit:
        raise HTTPError(422, f"text holds {len(texts)} sentences, over this server's limit of {limit} per request")
    empty = [i for i, t in enumerate(texts) if not t.strip()]
    if empty:
        raise HTTPError(422, f"text {empty[0] + 1} is empty; give some text to translate")
    return texts


# -- from a request to batch items --------------------------------------------------------------

_alone = count()  # a fresh batch key for an item that must not share its model call


def plan_translation(engine: Engine, req: TranslateRequest, limit: int) -> tuple[tuple, list[list[int]]]:
    """(batch key, source ids with EOS) for a /translate request, after every check."""
    from ..tasks.translation import encode_sources

    cfg = engine.config
    texts = texts_of(req, limit)
    max_new = req.max_new_tokens if req.max_new_tokens is not None else cfg.max_len - 1
    settings = dict(max_new_tokens=max_new, beams=req.beams, length_alpha=req.length_alpha)
    check_settings(cfg, **settings, early_stopping=False, do_sample=False, temperature=1.0, top_k=None,
                   top_p=None, repetition_penalty=1.0, seed=None, eos_id=-1, allow_extrapolation=False)
    rows = encode_sources(engine.tokenizer, texts, cfg.max_len, cfg.eos_id, truncate=req.truncate)
    context_window(cfg, max(map(len, rows)), max_new, False)  # raises past max_len
    return ("translate", tuple(sorted(settings.items()))), rows


def plan_generation(engine: Engine, req: GenerateRequest) -> tuple[tuple, list[list[int]]]:
    """(batch key, prompt ids) for a /generate request, after every check."""
    cfg = engine.config
    settings = dict(max_new_tokens=req.max_new_tokens, do_sample=req.do_sample, temperature=req.temperature,
                    top_k=req.top_k, top_p=req.top_p, repetition_penalty=req.repetition_penalty, seed=req.seed)
    check_settings(cfg, **settings, beams=1, length_alpha=0.0, early_stopping=False, eos_id=-1,
                   allow_extrapolation=False)
    if not req.prompt.strip():
        raise HTTPError(422, "prompt is empty; give some text to continue")
    ids = engine.tokenizer.encode(req.prompt, add_special_tokens=False)
    if not ids:
        raise HTTPError(422, "prompt encodes to no tokens; give some text to continue")
    cropped = cfg.arch == "transformer" and len(ids) + req.max_new_tokens > cfg.max_len
    seeded = req.do_sample and req.seed is not None
    alone = next(_alone) if cropped or seeded else None
    return ("generate", tuple(sorted(settings.items())), alone), [ids]


def run_batch(engine: Engine) -> Callable[[tuple, list[list[int]]], list[list[int]]]:
    def run(key: tuple, rows: list[list[int]]) -> list[list[int]]:
        return engine.run(rows, dict(key[1]))

    return run


# -- metrics ------------------------------------------------------------------------------------


def percentile(sorted_values: list[float], q: float) -> float | None:
    """The nearest-rank ``q`` quantile (0 < q <= 1) of an ascending list."""
    if not sorted_values:
        return None
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


def _rounded(ms: float | None) -> float | None:
    return None if ms is None else round(ms, 3)


class Metrics:
    """Counts by endpoint and status, and the latencies of the last ``keep`` requests."""

    def __init__(self, keep: int = 10_000) -> None:
        self.latencies_ms: deque[float] = deque(maxlen=keep)
        self.by_path: Counter[str] = Counter()
        self.by_status: Counter[int] = Counter()
        self.started = time.time()

    def record(self, path: str, status: int, seconds: float) -> None:
        self.by_path[path] += 1
        self.by_status[status] += 1
        self.latencies_ms.append(seconds * 1000)

    def snapshot(self, batcher: MicroBatcher) -> dict[str, Any]:
        ordered = sorted(self.latencies_ms)
        return {
            "requests": sum(self.by_path.values()),
            "requests_by_path": dict(self.by_path),
            "responses_by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            "latency_ms": {f"p{round(q * 100)}": _rounded(percentile(ordered, q)) for q in (0.5, 0.95, 0.99)},
            "queue_depth": batcher.depth,
            "batch_sizes": {str(k): v for k, v in sorted(batcher.batch_sizes.items())},
            "uptime_s": round(time.time() - self.started, 3),
        }


# -- the app ------------------------------------------------------------------------------------


def validation_message(exc: RequestValidationError) -> str:
    """``field: what is wrong`` for the first problem pydantic found in the body."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ())[1:]) or "body"
    return f"{where}: {first.get('msg', 'invalid')}" + (f" (got {first['input']!r:.80})" if "input" in first
                                                         and first.get("type") != "json_invalid" else "")


def install_errors(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body(validation_message(exc)), status_code=422)

    @app.exception_handler(HTTPError)
    async def http_error(request: Request, exc: HTTPError) -> JSONResponse:
        headers = {"Retry-After": "1"} if exc.status in (429, 503) else None
        return JSONResponse(error_body(str(exc), exc.hint), status_code=exc.status, headers=headers)

    @app.exception_handler(HTTPException)
    async def starlette_error(request: Request, exc: HTTPException) -> JSONResponse:  # 404, 405, 413
        return JSONResponse(error_body(str(exc.detail)), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(QkvError)
    async def refused(request: Request, exc: QkvError) -> JSONResponse:  # qkv's own checks: bad settings or text
        return JSONResponse(error_body(str(exc), exc.hint), status_code=422)


class BodyLimit:
    """ASGI middleware: 413 for a body over ``max_bytes``, whether its length is declared up front
    (refused before reading) or it arrives in chunks (refused once the count passes the limit)."""

    def __init__(self, app, max_bytes: int) -> None:  # noqa: ANN001 - any ASGI app
        self.app, self.max_bytes = app, max_bytes

    def too_large(self, size: str) -> str:
        return f"the body is {size} bytes, over this server's limit of {self.max_bytes}"

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001 - the ASGI signature
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"0").decode("latin-1")
        if not declared.isdigit() or int(declared) > self.max_bytes:
            response = JSONResponse(error_body(self.too_large(declared)), status_code=413)
            return await response(scope, receive, send)
        seen = 0

        async def counted():  # noqa: ANN202
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise HTTPException(413, self.too_large(f"more than {self.max_bytes}"))  # FastAPI lets it through
            return message

        await self.app(scope, counted, send)


def install_limits_and_metrics(app: FastAPI, settings: ServeSettings, metrics: Metrics) -> None:
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)

    @app.middleware("http")  # added last, so outermost: it also sees the 413s
    async def measure(request: Request, call_next):  # noqa: ANN001, ANN202 - FastAPI's middleware shape
        start = time.perf_counter()
        response = await call_next(request)
        metrics.record(request.url.path, response.status_code, time.perf_counter() - start)
        return response


async def answer(batcher: MicroBatcher, key: tuple, rows: list[list[int]], timeout_s: float) -> list[list[int]]:
    """The model's new ids for ``rows``, or the 429 / 503 / 504 that says why not."""
    try:
        return await batcher.run(key, rows, timeout_s)
    except QueueFull as e:
        raise HTTPError(429, str(e)) from None
    except Closed as e:
        raise HTTPError(503, str(e)) from None
    except TimeoutError:
        raise HTTPError(504, f"no answer within this server's timeout of {timeout_s:g} s; retry later") from None


def family_only(engine: Engine, family: str, path: str) -> None:
    if engine.config.family != family:
        other = "/generate" if family == "seq2seq" else "/translate"
        raise HTTPError(404, f"this server holds a {engine.config.family} model; {path} needs a {family} model, "
                             f"use POST {other}")


def install_routes(app: FastAPI, engine: Engine, batcher: MicroBatcher, settings: ServeSettings,
                   metrics: Metrics) -> None:
    tok = engine.tokenizer

    @app.post("/translate")
    async def translate(req: TranslateRequest) -> dict[str, Any]:
        family_only(engine, "seq2seq", "/translate")
        key, rows = plan_translation(engine, req, settings.max_sentences)
        new = await answer(batcher, key, rows, settings.timeout_s)
        return {"translations": [tok.decode(ids).strip() for ids in new]}

    @app.post("/generate")
    async def generate_text(req: GenerateRequest) -> dict[str, Any]:
        family_only(engine, "lm", "/generate")
        key, rows = plan_generation(engine, req)
        (new,) = await answer(batcher, key, rows, settings.timeout_s)
        return {"completion": tok.decode(new), "new_tokens": len(new)}

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        ok = batcher.worker.is_alive() and not batcher.closing
        body = {"status": "ok" if ok else "unavailable", "engine": engine.name, "family": engine.config.family,
                "queue_depth": batcher.depth}
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics")
    async def metrics_json() -> dict[str, Any]:
        return metrics.snapshot(batcher)


def create_app(engine: Engine, settings: ServeSettings = ServeSettings()) -> FastAPI:
    """The service for ``engine``; its worker starts with the app and drains its queue at shutdown."""
    batcher = MicroBatcher(run_batch(engine), window_s=settings.window_ms / 1000, max_batch=settings.max_batch,
                           max_queue=settings.max_queue)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        yield
        batcher.close()  # uvicorn has let in-flight requests finish; this finishes anything still queued

    app = FastAPI(title="qkv serve", lifespan=lifespan)
    app.state.batcher, app.state.metrics = batcher, metrics
    install_errors(app)
    install_limits_and_metrics(app, settings, metrics)
    install_routes(app, engine, batcher, settings, metrics)
    return app


__all__ = ["Engine", "TorchEngine", "ENGINES", "open_engine", "ServeSettings", "create_app", "TranslateRequest",
           "GenerateRequest", "Metrics", "percentile", "pad_rows"]
