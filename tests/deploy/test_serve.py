"""`qkv serve` through a real uvicorn server on a loopback port: every endpoint, every kind of bad
input as a 4xx that names the problem, 429 from a full queue, 504 past the timeout, a shutdown that
still answers the request in flight, and micro-batched answers equal to one-at-a-time answers."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import torch
import uvicorn
from safetensors.torch import save_model

from qkv import ModelConfig, build_model
from qkv.deploy.serve import ServeSettings, TorchEngine, create_app, open_engine, percentile
from qkv.tokenize import ByteBPE

TEXTS = ["Ein Mann fährt Fahrrad.", "Zwei Hunde spielen im Schnee.", "Eine Frau liest ein Buch.",
         "A man rides a bike.", "Two dogs play in the snow.", "Kinder laufen am Strand."]


def tiny_checkpoint(folder: Path, family: str) -> Path:
    """A random-weight checkpoint: config.json, model.safetensors, tokenizer.json. Weights are
    scaled up and the embeddings untied so that different inputs get different outputs."""
    torch.manual_seed(0)
    cfg = ModelConfig(family=family, vocab_size=300, d_model=32, n_layers=2, n_heads=2, d_ff=64, max_len=32,
                      tie_embeddings=False, norm_placement="pre", dropout_embed=0.0, dropout_residual=0.0,
                      dropout_attention=0.0, dropout_activation=0.0)
    model = build_model(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" not in name:
                p.mul_(8)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"qkv_version": "test", "model": cfg.to_dict(), "train": {}}))
    save_model(model, str(folder / "model.safetensors"))
    ByteBPE.train(TEXTS * 3, 300).save(str(folder / "tokenizer.json"))
    return folder


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("serve")
    return {family: tiny_checkpoint(root / family, family) for family in ("seq2seq", "lm")}


class SlowEngine:
    """The real engine, ``delay_s`` slower per model call, counting the rows of each call."""

    def __init__(self, engine: TorchEngine, delay_s: float) -> None:
        self.engine, self.delay_s, self.calls = engine, delay_s, []
        self.name, self.config, self.tokenizer = engine.name, engine.config, engine.tokenizer

    def run(self, rows, settings):
        self.calls.append(len(rows))
        time.sleep(self.delay_s)
        return self.engine.run(rows, settings)


@contextmanager
def serving(engine, **settings):
    """A real uvicorn server for ``engine`` on a free loopback port (port 0: the system picks one), run
    in a thread: yields (client, server, thread)."""
    app = create_app(engine, ServeSettings(**settings))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                           timeout_graceful_shutdown=10))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        try:
            yield client, server, thread
        finally:
            server.should_exit = True
            thread.join(20)


@pytest.fixture(scope="module")
def mt(checkpoints):
    with serving(open_engine(checkpoints["seq2seq"])) as (client, *_):
        yield client


@pytest.fixture(scope="module")
def lm(checkpoints):
    with serving(open_engine(checkpoints["lm"])) as (client, *_):
        yield client


def post_many(client: httpx.Client, path: str, bodies: list[dict]) -> list[httpx.Response]:
    """All ``bodies`` at once, one thread each."""
    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(lambda body: client.post(path, json=body), bodies))


# -- endpoints ----------------------------------------------------------------------------------

def test_translate_answers_what_generate_gives(mt, checkpoints):
    from qkv.deploy.precision import open_model
    from qkv.generate import generate

    model, tok, _ = open_model(checkpoints["seq2seq"], family="seq2seq", command="test")
    ids = torch.tensor([tok.encode(TEXTS[0], add_special_tokens=False) + [model.config.eos_id]])
    new = generate(model, ids, max_new_tokens=10, beams=3, length_alpha=0.6)[0].tolist()
    want = tok.decode(new[: new.index(3)] if 3 in new else new).strip()
    r = mt.post("/translate", json={"text": TEXTS[0], "beams": 3, "max_new_tokens": 10})
    assert r.status_code == 200, r.text
    assert r.json() == {"translations": [want]} and want


def test_translate_takes_a_list_and_keeps_its_order(mt):
    many = mt.post("/translate", json={"text": TEXTS, "beams": 2, "max_new_tokens": 8}).json()["translations"]
    ones = [mt.post("/translate", json={"text": t, "beams": 2, "max_new_tokens": 8}).json()["translations"][0]
            for t in TEXTS]
    assert many == ones and len(set(ones)) > 1


def test_generate_greedy_and_seeded_sampling_are_reproducible(lm):
    greedy = {"prompt": "Ein Mann", "max_new_tokens": 6, "do_sample": False}
    a, b = lm.post("/generate", json=greedy).json(), lm.post("/generate", json=greedy).json()
    assert a == b and a["new_tokens"] == 6 and a["completion"]
    seeded = {"prompt": "Ein Mann", "max_new_tokens": 6, "seed": 3, "temperature": 1.0, "top_k": 20, "top_p": 0.9}
    assert lm.post("/generate", json=seeded).json() == lm.post("/generate", json=seeded).json()


def test_healthz_and_metrics(mt):
    assert mt.post("/translate", json={"text": "Ein Hund.", "max_new_tokens": 4}).status_code == 200
    health = mt.get("/healthz")
    assert health.status_code == 200
    assert health.json() | {"queue_depth": 0} == {"status": "ok", "engine": "torch-fp32", "family": "seq2seq",
                                                   "queue_depth": 0}
    m = mt.get("/metrics").json()
    assert m["requests"] >= 2 and m["requests_by_path"]["/translate"] >= 1
    assert m["responses_by_status"]["200"] >= 1 and m["queue_depth"] == 0
    assert set(m["latency_ms"]) == {"p50", "p95", "p99"} and 0 < m["latency_ms"]["p50"] <= m["latency_ms"]["p99"]
    assert sum(m["batch_sizes"].values()) >= 1


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert [percentile(values, q) for q in (0.5, 0.95, 0.99)] == [50.0, 95.0, 99.0]
    assert percentile([], 0.5) is None


def test_serve_options_are_checked_before_the_model_loads(tmp_path):
    import argparse

    from qkv.deploy.cli_serve import add_subparser
    from qkv.errors import InputError

    parser = argparse.ArgumentParser()
    add_subparser(parser.add_subparsers())
    for argv, words in ((["--max-batch", "0"], "--max-batch 0 must be a positive integer"),
                        (["--timeout", "0"], "--timeout 0 must be a positive number"),
                        (["--engine", "onnx"], "engine 'onnx' is not one of torch")):
        args = parser.parse_args(["serve", str(tmp_path / "missing"), *argv])
        with pytest.raises(InputError, match=words):
            args.fn(args)


# -- bad input: a 4xx that says what is wrong, never a 500 --------------------------------------

BAD_TRANSLATE = [
    ({"text": 5}, 422, "text"),
    ({"text": "Ein Hund.", "beams": "3"}, 422, "beams"),
    ({"text": "Ein Hund.", "beams": 2.5}, 422, "beams"),
    ({"beams": 2}, 422, "text: Field required"),
    ({"text": "Ein Hund.", "colour": "red"}, 422, "colour"),
    ({"text": "   "}, 422, "text 1 is empty"),
    ({"text": []}, 422, "empty list"),
    ({"text": ["ok"] * 65}, 422, "limit of 64"),
    ({"text": "Ein Mann fährt Fahrrad. " * 20}, 422, "over this model's limit of 31 source tokens"),
    ({"text": "Ein Hund.", "beams": 0}, 422, "beams=0 must be an integer >= 1"),
    ({"text": "Ein Hund.", "max_new_tokens": 0}, 422, "max_new_tokens=0"),
    ({"text": "Ein Hund.", "max_new_tokens": 40}, 422, "over the model's max_len=32"),
    ({"text": "Ein Hund.", "length_alpha": -1.0}, 422, "length_alpha=-1.0"),
]


@pytest.mark.parametrize("body,status,words", BAD_TRANSLATE, ids=[w for _, _, w in BAD_TRANSLATE])
def test_bad_translate_request_says_what_is_wrong(mt, body, status, words):
    r = mt.post("/translate", json=body)
    assert r.status_code == status, r.text
    assert words in r.json()["error"], r.json()


BAD_GENERATE = [
    ({"prompt": None}, 422, "prompt"),
    ({"prompt": "a", "max_new_tokens": "9"}, 422, "max_new_tokens"),
    ({"prompt": "a", "do_sample": "yes"}, 422, "do_sample"),
    ({"prompt": ""}, 422, "prompt is empty"),
    ({"prompt": "a", "temperature": 0.0}, 422, "temperature=0.0 must be a finite number > 0"),
    ({"prompt": "a", "top_p": 1.5}, 422, "top_p=1.5 must lie in (0, 1]"),
    ({"prompt": "a", "top_k": 0}, 422, "top_k=0"),
    ({"prompt": "a", "repetition_penalty": 0.0}, 422, "repetition_penalty=0.0"),
    ({"prompt": "a", "seed": -1}, 422, "seed=-1"),
    ({"prompt": "a", "max_new_tokens": 10**6}, 422, "max_new_tokens=1000000 must be an integer in [1, 100000]"),
]


@pytest.mark.parametrize("body,status,words", BAD_GENERATE, ids=[w for _, _, w in BAD_GENERATE])
def test_bad_generate_request_says_what_is_wrong(lm, body, status, words):
    r = lm.post("/generate", json=body)
    assert r.status_code == status, r.text
    assert words in r.json()["error"], r.json()


def test_malformed_json_oversized_body_and_the_other_familys_endpoint(mt, lm):
    r = mt.post("/translate", content=b'{"text": "Ein', headers={"content-type": "application/json"})
    assert r.status_code == 422 and "JSON decode error" in r.json()["error"]
    r = mt.post("/translate", json={"text": "x" * 300_000})
    assert r.status_code == 413 and "over this server's limit of 262144" in r.json()["error"]
    r = mt.post("/generate", json={"prompt": "a"})
    assert r.status_code == 404 and "use POST /translate" in r.json()["error"]
    r = lm.post("/translate", json={"text": "a"})
    assert r.status_code == 404 and "use POST /generate" in r.json()["error"]
    assert mt.get("/healthz").status_code == lm.get("/healthz").status_code == 200


# -- load: batching, a full queue, the timeout, shutdown ----------------------------------------

def test_micro_batched_answers_equal_one_at_a_time_answers(checkpoints):
    for family, path, bodies in (
        ("seq2seq", "/translate", [{"text": t, "beams": 2, "max_new_tokens": 8} for t in TEXTS]),
        ("lm", "/generate", [{"prompt": t, "max_new_tokens": 6, "do_sample": False} for t in TEXTS]
         + [{"prompt": t, "max_new_tokens": 6, "seed": i, "temperature": 2.0} for i, t in enumerate(TEXTS[:3])]),
    ):
        engine = SlowEngine(open_engine(checkpoints[family]), delay_s=0.0)
        with serving(engine, window_ms=200, max_batch=len(bodies)) as (client, *_):
            together = [r.json() for r in post_many(client, path, bodies)]
            assert max(engine.calls) > 1, engine.calls  # the concurrent requests did share model calls
            engine.calls.clear()
            alone = [client.post(path, json=body).json() for body in bodies]
            assert engine.calls == [1] * len(bodies)
        assert together == alone, family
        assert len({json.dumps(a) for a in alone}) > 1  # different inputs, different outputs: the check can fail


def test_a_full_queue_answers_429_and_the_rest_are_served(checkpoints):
    engine = SlowEngine(open_engine(checkpoints["seq2seq"]), delay_s=0.3)
    with serving(engine, max_queue=2, max_batch=1, window_ms=0) as (client, *_):
        responses = post_many(client, "/translate", [{"text": t, "max_new_tokens": 4} for t in TEXTS * 2])
        codes = sorted(r.status_code for r in responses)
        assert 429 in codes and 200 in codes and set(codes) == {200, 429}, codes
        full = next(r for r in responses if r.status_code == 429)
        assert "queue holds" in full.json()["error"] and full.headers["retry-after"] == "1"
        assert client.get("/healthz").status_code == 200
        assert client.get("/metrics").json()["responses_by_status"]["429"] == codes.count(429)


def test_a_slow_answer_is_504(checkpoints):
    engine = SlowEngine(open_engine(checkpoints["lm"]), delay_s=1.0)
    with serving(engine, timeout_s=0.2) as (client, *_):
        r = client.post("/generate", json={"prompt": "Ein", "max_new_tokens": 2})
        assert r.status_code == 504 and "timeout of 0.2 s" in r.json()["error"]
        time.sleep(1.0)  # the worker finishes the abandoned call and is ready again
        assert client.get("/healthz").status_code == 200


def test_shutdown_finishes_the_request_in_flight(checkpoints):
    engine = SlowEngine(open_engine(checkpoints["seq2seq"]), delay_s=1.0)
    with serving(engine) as (client, server, thread):
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(client.post, "/translate", json={"text": "Ein Hund.", "max_new_tokens": 4})
            while not engine.calls:  # the request is in the model
                time.sleep(0.01)
            server.should_exit = True
            r = pending.result(timeout=20)
        assert r.status_code == 200 and len(r.json()["translations"]) == 1
        thread.join(20)
        assert not thread.is_alive()
        batcher = server.config.app.state.batcher
        assert batcher.closing and not batcher.worker.is_alive() and batcher.depth == 0
        with pytest.raises(httpx.TransportError):  # the port is closed
            httpx.get(str(client.base_url) + "/healthz", timeout=2)


def test_a_chunked_body_over_the_limit_is_413_and_unknown_routes_say_so(mt):
    chunks = (b'{"text": "' + b"x" * 100_000 for _ in range(4))  # no content-length: sent chunked
    r = mt.post("/translate", content=chunks, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "over this server's limit" in r.json()["error"]
    assert mt.get("/nowhere").json() == {"error": "Not Found"}
    assert mt.get("/translate").status_code == 405


@pytest.mark.parametrize("engine, precision", [("torch-int8", "int8"), ("torch-bf16", "bf16")])
def test_reduced_precision_engines_serve_what_that_precision_generates(checkpoints, engine, precision):
    from qkv.deploy.precision import open_model
    from qkv.generate import generate

    model, tok, _ = open_model(checkpoints["seq2seq"], family="seq2seq", command="test", precision=precision)
    ids = torch.tensor([tok.encode(TEXTS[0], add_special_tokens=False) + [model.config.eos_id]])
    new = generate(model, ids, max_new_tokens=10)[0].tolist()
    want = tok.decode(new[: new.index(3)] if 3 in new else new).strip()
    served = open_engine(checkpoints["seq2seq"], engine)
    assert served.name == engine
    with serving(served) as (client, *_):
        r = client.post("/translate", json={"text": TEXTS[0], "beams": 1, "max_new_tokens": 10})
        assert r.status_code == 200 and r.json() == {"translations": [want]}
        assert client.get("/healthz").json()["engine"] == engine
