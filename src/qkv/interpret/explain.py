"""``qkv explain CHECKPOINT "text" --out explain.html``: one self-contained page to look inside.

The page holds the model's output (a translation, a continuation, class probabilities), the
input and output tokens, and every captured attention matrix — per stack, kind (self/cross),
layer and head — stored as bytes (weight × 255, base64) so a 256-token input stays a few
megabytes. Picking a layer and head colours the tokens by the attention of the token under the
pointer (hover an output token of a translator to see its cross-attention alignment over the
source); a heatmap shows the whole matrix. A classifier's input tokens can be coloured by their
Integrated-Gradients attribution instead. No script or style comes from outside the file.
"""

from __future__ import annotations

import base64
import html
import json

import torch
from torch import Tensor, nn

from ..errors import InputError
from .capture import capture

MAX_TOKENS = 512  # beyond this the page (T² bytes per head) is no longer quick to open


def token_strings(tok, ids: list[int]) -> list[str]:
    return [tok.decode([i], skip_special_tokens=False) or f"<{i}>" for i in ids]


def packed(weights: Tensor) -> list[str]:
    """``(H, T, S)`` weights → one base64 string of uint8 (weight × 255) per head."""
    as_bytes = (weights.float().clamp(0, 1) * 255).round().to(torch.uint8)  # (H, T, S)
    return [base64.b64encode(h.contiguous().numpy().tobytes()).decode() for h in as_bytes]


def matrices(cap, stacks: list[str]) -> list[dict]:
    out = []
    for stack in stacks:
        for kind in ("self", "cross"):
            for layer in cap.layers(stack, kind):
                w = cap.weights(stack, layer, kind)[0][0]  # first forward, first row: (H, T, S)
                out.append({"stack": stack, "kind": kind, "layer": layer, "rows": w.shape[1], "cols": w.shape[2],
                            "heads": packed(w)})
    return out


@torch.no_grad()
def _translator(model: nn.Module, tok, text: str) -> dict:
    from ..tasks.translation import encode_sources

    cfg = model.config
    src = torch.tensor(encode_sources(tok, [text], cfg.max_len, cfg.eos_id))  # (1, S)
    out = model.generate(src, max_new_tokens=min(cfg.max_len - 1, 2 * src.shape[1] + 10), beams=4)[0].tolist()
    out = out[: out.index(cfg.eos_id) + 1] if cfg.eos_id in out else out
    start = cfg.decoder_start_id if cfg.decoder_start_id is not None else cfg.bos_id
    tgt_in = torch.tensor([[start] + out[:-1]])  # (1, T): what the decoder read for each output token
    with capture(model) as cap:
        model(src, tgt_in)
    return {"source": token_strings(tok, src[0].tolist()), "target": token_strings(tok, out),
            "output": tok.decode([t for t in out if t != cfg.eos_id]), "attention": matrices(cap, ["encoder", "decoder"])}


@torch.no_grad()
def _language_model(model: nn.Module, tok, ids: Tensor) -> dict:
    with capture(model) as cap:
        model(ids)
    continuation = model.generate(ids, max_new_tokens=32, eos_id=None)[0, ids.shape[1]:].tolist()
    return {"source": token_strings(tok, ids[0].tolist()), "target": [], "attention": matrices(cap, ["decoder"]),
            "output": tok.decode(continuation)}


def _encoder(model: nn.Module, tok, ids: Tensor) -> dict:
    with torch.no_grad(), capture(model) as cap:
        logits = model(ids)
    data = {"source": token_strings(tok, ids[0].tolist()), "target": [], "attention": matrices(cap, ["encoder"])}
    if model.config.head == "classify":
        from .attribution import classifier_ig

        probs = logits.softmax(-1)[0]
        ig = classifier_ig(model, ids)
        data.update(output="class probabilities: " + ", ".join(f"{c}: {p:.3f}" for c, p in enumerate(probs.tolist())),
                    ig=[round(v, 5) for v in ig["tokens"][0].tolist()], ig_steps=ig["steps"],
                    ig_delta=float(ig["delta"][0]), predicted=int(probs.argmax()))
    else:
        data["output"] = "masked-LM encoder: attention only"
    return data


def explain_data(model: nn.Module, tok, text: str) -> dict:
    """Everything the page shows, as JSON-able data."""
    family = model.config.family
    if family == "seq2seq":
        data = _translator(model, tok, text)
    else:
        ids = torch.tensor([tok.encode(text, add_special_tokens=family == "encoder")])  # (1, T)
        if ids.shape[1] == 0:
            raise InputError("the text is empty after tokenisation; give some words to explain")
        if ids.shape[1] > min(MAX_TOKENS, model.config.max_len):
            raise InputError(f"the text is {ids.shape[1]} tokens, over the {min(MAX_TOKENS, model.config.max_len)} "
                             f"this page (and model) can show; shorten it")
        data = _language_model(model, tok, ids) if family == "lm" else _encoder(model, tok, ids)
    return {"family": family, "text": text, "n_heads": model.config.n_heads, **data}


def render(data: dict) -> str:
    """The self-contained HTML page for ``explain_data``'s output."""
    payload = json.dumps(data).replace("</", "<\\/")  # safe inside <script>
    return PAGE.replace("__TITLE__", html.escape(data["text"][:80])).replace("__DATA__", payload)


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>qkv explain: __TITLE__</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;max-width:1100px;color:#222}
.controls{display:flex;gap:1em;align-items:center;flex-wrap:wrap;margin:.8em 0}
.tokens{line-height:2.1em;max-height:16em;overflow-y:auto;border:1px solid #ddd;padding:.5em;border-radius:4px}
.tok{padding:.15em .2em;margin:0 .08em;border-radius:3px;cursor:default;white-space:pre}
.tok.active{outline:2px solid #c00}
#heat{border:1px solid #ccc;image-rendering:pixelated;width:min(520px,100%)}
.output{background:#f4f6fa;padding:.6em;border-radius:4px}
h2{font-size:1.05em;margin:1em 0 .3em}
</style></head><body>
<h1>qkv explain</h1>
<p class="output" id="output"></p>
<div class="controls">
<label>attention <select id="which"></select></label>
<label>head <select id="head"></select></label>
<label id="iglabel" hidden><input type="checkbox" id="ig"> colour input by Integrated Gradients</label>
</div>
<p id="hint"></p>
<h2 id="srctitle">input tokens</h2><div class="tokens" id="src"></div>
<h2 id="tgttitle" hidden>output tokens</h2><div class="tokens" id="tgt" hidden></div>
<h2>attention matrix (rows: queries, columns: keys)</h2><canvas id="heat"></canvas>
<script id="data" type="application/json">__DATA__</script>
<script>
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const $ = id => document.getElementById(id);
const cache = new Map();
function matrix(m, h) {  // one head as Float32Array rows*cols, or the mean of all heads (h = -1)
  const key = D.attention.indexOf(m) + ":" + h;
  if (cache.has(key)) return cache.get(key);
  const heads = h < 0 ? m.heads : [m.heads[h]];
  const out = new Float32Array(m.rows * m.cols);
  for (const b64 of heads) {
    const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
    for (let i = 0; i < bytes.length; i++) out[i] += bytes[i] / 255 / heads.length;
  }
  cache.set(key, out); return out;
}
function spans(box, tokens) {
  box.textContent = "";
  return tokens.map((t, i) => { const s = document.createElement("span"); s.className = "tok";
    s.textContent = t; s.dataset.i = i; box.appendChild(s); return s; });
}
const srcSpans = spans($("src"), D.source), tgtSpans = spans($("tgt"), D.target || []);
$("output").textContent = D.output || "";
D.attention.forEach((m, i) => { const o = document.createElement("option"); o.value = i;
  o.textContent = `${m.stack} ${m.kind}-attention, layer ${m.layer}`; $("which").appendChild(o); });
[["mean of heads", -1]].concat([...Array(D.n_heads).keys()].map(h => ["head " + h, h])).forEach(([t, v]) => {
  const o = document.createElement("option"); o.value = v; o.textContent = t; $("head").appendChild(o); });
if (D.ig) { $("iglabel").hidden = false; }
function current() { return D.attention[+$("which").value]; }
function colour(spansOf, values, hue) {
  const top = Math.max(1e-9, ...values.map(Math.abs));
  spansOf.forEach((s, i) => { const v = (values[i] || 0) / top;
    s.style.background = v >= 0 ? `hsla(${hue},80%,50%,${Math.abs(v)})` : `hsla(0,80%,50%,${Math.abs(v)})`; });
}
function clear() { [...srcSpans, ...tgtSpans].forEach(s => { s.style.background = ""; s.classList.remove("active"); }); }
function show(row, queries, keys) {
  const m = current(), w = matrix(m, +$("head").value);
  clear(); queries[row].classList.add("active");
  colour(keys, Array.from(w.subarray(row * m.cols, (row + 1) * m.cols)), 210);
}
function wire() {
  const m = current(), cross = m.kind === "cross", decoderSelf = m.stack === "decoder" && D.family === "seq2seq";
  const queries = cross || decoderSelf ? tgtSpans : srcSpans, keys = cross ? srcSpans : queries;
  $("tgt").hidden = $("tgttitle").hidden = !D.target.length;
  $("hint").textContent = cross ? "Hover an output token: its cross-attention over the source (alignment)."
                                : "Hover a token: where it attends.";
  [...srcSpans, ...tgtSpans].forEach(s => { s.onmouseenter = null; });
  queries.forEach((s, i) => { s.onmouseenter = () => show(i, queries, keys); });
  heat(m);
}
function heat(m) {
  const c = $("heat"), w = matrix(m, +$("head").value);
  c.width = m.cols; c.height = m.rows;
  const ctx = c.getContext("2d"), img = ctx.createImageData(m.cols, m.rows);
  for (let i = 0; i < w.length; i++) { const v = 255 - Math.round(255 * Math.min(1, w[i] * 2));
    img.data.set([v, v, 255, 255], 4 * i); }
  ctx.putImageData(img, 0, 0);
}
$("which").onchange = $("head").onchange = () => { clear(); wire(); };
$("ig").onchange = () => { clear(); if ($("ig").checked) colour(srcSpans, D.ig, 120); };
wire();
</script></body></html>
"""

__all__ = ["explain_data", "render", "MAX_TOKENS"]
