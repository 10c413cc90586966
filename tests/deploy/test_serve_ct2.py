"""`qkv serve --engine ctranslate2`: a CTranslate2 export answers what the PyTorch engine answers."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("ctranslate2")

from fastapi.testclient import TestClient  # noqa: E402

from qkv import ModelConfig, build_model  # noqa: E402
from qkv.deploy.ct2_export import export_ctranslate2  # noqa: E402
from qkv.deploy.serve import ENGINES, TorchEngine, create_app  # noqa: E402
from qkv.tasks.translation import encode_sources  # noqa: E402
from qkv.tokenize import BPE, fast  # noqa: E402

TEXTS = ["ein mann fährt fahrrad .", "a man rides a bike .", "zwei hunde spielen im schnee .",
         "eine frau liest ein buch ."]


def _model(tok, family: str):
    torch.manual_seed(0)
    cfg = ModelConfig(family=family, vocab_size=tok.vocab_size, d_model=32, n_layers=2, n_heads=4, d_ff=64,
                      max_len=64, init_std=0.2, embed_init_std=1.0, tie_embeddings=False)
    return build_model(cfg).eval()


@pytest.mark.parametrize("family", ["seq2seq", "lm"])
def test_ct2_engine_serves_what_the_torch_engine_serves(tmp_path, family):
    torch.set_num_threads(1)
    tok = fast.from_tokenizer(BPE.train(TEXTS * 3, vocab_size=120))
    model = _model(tok, family)
    out = export_ctranslate2(model, tok, tmp_path / "ct2")
    tok.save(out / "tokenizer.json")  # what `qkv export` copies there
    engine, reference = ENGINES["ctranslate2"](out), TorchEngine(model, tok)
    if family == "seq2seq":
        rows = encode_sources(tok, TEXTS, model.config.max_len, model.config.eos_id)
        settings = dict(max_new_tokens=12, beams=3, length_alpha=0.6)
    else:
        rows = [tok.encode(t, add_special_tokens=False)[:4] for t in TEXTS]
        settings = dict(max_new_tokens=8, do_sample=False)
    want = reference.run(rows, settings)
    assert engine.run(rows, settings) == want and len({tuple(w) for w in want}) > 1
    if family == "seq2seq":
        with TestClient(create_app(engine)) as client:
            r = client.post("/translate", json={"text": TEXTS, "beams": 3, "max_new_tokens": 12})
        assert r.status_code == 200, r.text
        assert r.json()["translations"] == [tok.decode(w).strip() for w in want]
