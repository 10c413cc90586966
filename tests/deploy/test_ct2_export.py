"""CTranslate2 export: the independent CT2 engine against qkv's own forward pass and searches.

Tiny random models (seconds each, CPU). Every expected value comes from the qkv model, never
from the converter. The random translators are made "peaky" (large init, untied output with a
random bias, EOS nudged up) so greedy and beam outputs vary in length and content instead of
all being empty or all running to the limit, which would let a broken export pass.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

ctranslate2 = pytest.importorskip("ctranslate2")

from safetensors.torch import save_model  # noqa: E402

from qkv import ModelConfig, build_model  # noqa: E402
from qkv.cli import main  # noqa: E402
from qkv.deploy.ct2_export import ct2_generate, ct2_translate, export_ctranslate2  # noqa: E402
from qkv.errors import InputError  # noqa: E402
from qkv.tasks.translation import encode_sources, translate  # noqa: E402
from qkv.tokenize import BPE, fast  # noqa: E402

SENTENCES = ["ein mann fährt fahrrad .", "a man rides a bike .", "zwei hunde spielen im schnee .",
             "two dogs play in the snow .", "eine frau liest ein buch .", "a woman reads a book .",
             "kinder laufen am strand .", "children run on the beach ."]
# EOS logit boosts that give each placement a mix of short, long and cut-off outputs.
EOS_BOOST = {"post": 2.0, "pre": 3.0}


@pytest.fixture(scope="module")
def tok():
    torch.set_num_threads(1)
    return fast.from_tokenizer(BPE.train(SENTENCES * 3, vocab_size=120))


def _peaky(model, eos_boost: float):
    if model.head.bias is not None:
        with torch.no_grad():
            model.head.bias.normal_(0, 1)
            model.head.bias[model.config.eos_id] += eos_boost
    return model.eval()


def translator(tok, placement: str = "post", **changes):
    torch.manual_seed(0)
    cfg = ModelConfig(family="seq2seq", vocab_size=tok.vocab_size, d_model=32, n_layers=2, n_heads=4, d_ff=64,
                      max_len=64, norm_placement=placement, init_std=0.2, embed_init_std=1.0, output_bias=True,
                      tie_embeddings=False).replace(**changes)
    return _peaky(build_model(cfg), EOS_BOOST[placement])


def language_model(tok, **changes):
    torch.manual_seed(0)
    cfg = ModelConfig(family="lm", vocab_size=tok.vocab_size, d_model=32, n_layers=2, n_heads=4, d_ff=64,
                      max_len=64, init_std=0.2, embed_init_std=1.0, output_bias=True,
                      tie_embeddings=False).replace(**changes)
    return _peaky(build_model(cfg), 1.0)


def _strings(tok, ids):
    return [tok.hf.id_to_token(i) for i in ids]


@torch.no_grad()
def max_score_gap(model, tok, out) -> float:
    """Largest |qkv − CT2| teacher-forced log-prob over 8 (source, target) pairs."""
    cfg = model.config
    sources = encode_sources(tok, SENTENCES, cfg.max_len, cfg.eos_id)
    targets = [s[:-1] for s in encode_sources(tok, SENTENCES[1:] + SENTENCES[:1], cfg.max_len, cfg.eos_id)]
    ct2 = ctranslate2.Translator(str(out), device="cpu", intra_threads=1)
    scored = ct2.score_batch([_strings(tok, s[:-1]) for s in sources], [_strings(tok, t) for t in targets])
    gap = 0.0
    for src, tgt, result in zip(sources, targets, scored):
        logp = torch.log_softmax(model(torch.tensor([src]), torch.tensor([[cfg.start_id] + tgt])).float(), -1)[0]
        want = logp.gather(1, torch.tensor(tgt + [cfg.eos_id])[:, None])[:, 0]  # CT2 scores the EOS too
        assert len(result.log_probs) == len(want)
        gap = max(gap, (want - torch.tensor(result.log_probs)).abs().max().item())
    return gap


@pytest.fixture(scope="module", params=["post", "pre"])
def exported(request, tok, tmp_path_factory):
    model = translator(tok, request.param)
    return model, export_ctranslate2(model, tok, tmp_path_factory.mktemp(f"ct2_{request.param}"))


def test_teacher_forced_log_probs_match_qkv(exported, tok):
    model, out = exported
    assert max_score_gap(model, tok, out) < 1e-4


@pytest.mark.parametrize("beams", [1, 4])
def test_greedy_and_beam_outputs_equal_qkv_translate(exported, tok, beams):
    model, out = exported
    want = translate(model, tok, SENTENCES, beams=beams)
    assert len({len(w) for w in want}) > 2  # the outputs differ in length: a real comparison
    assert ct2_translate(out, tok, SENTENCES, beams=beams) == want


VARIANTS = [
    dict(sinusoidal_layout="concat"),
    dict(position="learned"),
    dict(position="none"),
    dict(activation="gelu", norm="rms", norm_placement="pre"),
    dict(activation="gelu_tanh", norm_eps=1e-3),
    dict(activation="swiglu", bias=False, norm_placement="pre"),
    dict(activation="geglu"),
    dict(n_kv_heads=2),
    dict(d_head=16),
    dict(tie_qk=True),
    dict(attention_scale="none"),
    dict(attention_scale=0.5),
    dict(embed_scale=False, embed_norm=True),
    dict(tie_embeddings=True, output_bias=False),
    dict(norm_placement="pre", final_norm=False),
    dict(n_decoder_layers=1),
    dict(decoder_start_id=0),
]


@pytest.mark.parametrize("changes", VARIANTS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_each_config_switch_keeps_log_prob_parity(tok, tmp_path, changes):
    changes = dict(changes)
    placement = changes.pop("norm_placement", "post")
    model = translator(tok, placement, **changes)
    assert max_score_gap(model, tok, export_ctranslate2(model, tok, tmp_path / "ct2")) < 1e-4


@pytest.mark.parametrize("changes", [{}, dict(position="rope", norm="rms", norm_placement="pre", activation="swiglu"),
                                     dict(position="learned", activation="gelu", n_kv_heads=1)],
                         ids=["sinusoidal", "rope", "learned-mqa"])
@torch.no_grad()
def test_lm_logits_and_greedy_equal_qkv(tok, tmp_path, changes):
    model = language_model(tok, **changes)
    out = export_ctranslate2(model, tok, tmp_path / "lm")
    prompts = [tok.encode(s, add_special_tokens=False)[:5] for s in SENTENCES]
    logits = ctranslate2.Generator(str(out), device="cpu", intra_threads=1).forward_batch(
        [_strings(tok, p) for p in prompts])
    got = torch.from_numpy(np.array(logits))  # (B, T, V); all prompts have 5 tokens
    torch.testing.assert_close(got, model(torch.tensor(prompts)).float(), atol=1e-4, rtol=0)
    want = []
    for p in prompts:
        new = model.generate(torch.tensor([p]), max_new_tokens=12)[0, len(p):].tolist()
        want.append(new[: new.index(model.config.eos_id) + 1] if model.config.eos_id in new else new)
    assert len({tuple(w) for w in want}) > 1
    assert ct2_generate(out, tok, prompts, max_new_tokens=12) == want


@pytest.mark.parametrize("field, value", [
    ("position", "t5_bias"), ("position", "alibi"), ("position", "shaw"), ("position", "rope"),
    ("norm", "batch"), ("attention", "additive"), ("residual", False), ("window", 4), ("causal_mask", False),
    ("final_norm", True), ("arch", "lstm"),
])
def test_unsupported_config_is_refused_with_the_field_named_before_writing(tok, tmp_path, field, value):
    model = translator(tok, "post", **{field: value})
    out = tmp_path / "ct2"
    with pytest.raises(InputError, match=f"{field}={value!r}"):
        export_ctranslate2(model, tok, out)
    assert not out.exists()


def test_encoder_family_and_wrong_tokenizer_are_refused(tok, tmp_path):
    encoder = build_model(ModelConfig(family="encoder", vocab_size=tok.vocab_size, d_model=32, n_heads=4, max_len=16))
    with pytest.raises(InputError, match="family='encoder'"):
        export_ctranslate2(encoder, tok, tmp_path / "enc")
    other = build_model(ModelConfig(vocab_size=tok.vocab_size + 1, d_model=32, n_heads=4, max_len=16))
    with pytest.raises(InputError, match="vocab_size"):
        export_ctranslate2(other, tok, tmp_path / "other")


@pytest.fixture()
def run_dir(tok, tmp_path):
    """A run folder as ``qkv train`` leaves it: task.json, tokenizer.json, final/ checkpoint."""
    model = translator(tok, "pre")
    run = tmp_path / "run"
    (run / "final").mkdir(parents=True)
    (run / "task.json").write_text("{}\n")
    tok.save(run / "tokenizer.json")
    (run / "final" / "config.json").write_text(json.dumps({"qkv_version": "test", "model": model.config.to_dict()}))
    save_model(model, str(run / "final" / "model.safetensors"))
    return run, model


@pytest.mark.parametrize("int8", [False, True])
def test_cli_export_writes_a_directory_ctranslate2_loads(run_dir, tok, tmp_path, int8):
    run, model = run_dir
    out = tmp_path / "ct2"
    assert main(["export", str(run), "--to", "ctranslate2", "--out", str(out), *(["--int8"] if int8 else [])]) == 0
    assert (out / "model.bin").is_file() and (out / "tokenizer.json").is_file()
    ctranslate2.Translator(str(out), device="cpu")  # loads
    got = ct2_translate(out, fast.load(out / "tokenizer.json"), SENTENCES, beams=2)
    want = translate(model, tok, SENTENCES, beams=2)
    if int8:  # int8 weights change the arithmetic: most, not all, outputs agree
        assert all(g.strip() or not w for g, w in zip(got, want)) and sum(g == w for g, w in zip(got, want)) >= 4
    else:
        assert got == want


def test_an_eos_first_gives_an_empty_translation_in_both(tok, tmp_path):
    model = translator(tok, "post")
    with torch.no_grad():
        model.head.bias[model.config.eos_id] += 100.0  # EOS wins the first step
    assert translate(model, tok, SENTENCES[:3], beams=1) == ["", "", ""]
    out = export_ctranslate2(model, tok, tmp_path / "ct2")
    assert ct2_translate(out, tok, SENTENCES[:3], beams=1) == ["", "", ""]
