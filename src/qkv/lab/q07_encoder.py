"""Question 7: describe the encoder. (Encoder)

Claim under test (as commonly answered, after Vaswani et al., 2017, §3.1): the encoder is a
token embedding (scaled by √d_model) plus a position encoding, followed by N identical layers,
each a multi-head self-attention sublayer and a position-wise feed-forward sublayer (two linear
maps with an activation between), each sublayer wrapped in a residual connection and a
LayerNorm; a padding mask keeps attention off the padded keys. Per layer that is
4d² + 4d attention parameters, 2·d·d_ff + d_ff + d feed-forward parameters and 2 × 2d norm
parameters.

Method:
1. Trace: build qkv encoders from ``ModelConfig(family="encoder")`` (post-LN sinusoidal, pre-LN
   sinusoidal, and BERT-style learned positions with segments and an embedding norm), run one
   padded batch through each with forward hooks on every submodule, and record in call order
   each step's output shape and parameter count. The parameters summed over the trace, the
   model's own count and the formula above must agree exactly.
2. Parity, every seed with fresh random weights (perturbed away from the init, so a swapped or
   dropped tensor shows): one qkv encoder layer against ``torch.nn.TransformerEncoderLayer``
   with the weights copied (post-LN and pre-LN, padded batch), and the whole qkv encoder
   against the description written out — embedding·√d + sinusoids + N copied PyTorch layers
   (+ final LayerNorm for pre-LN). At full size, also a BERT-config qkv encoder against Hugging
   Face ``BertModel`` with the weights copied by ``qkv.interop.to_hf`` (when ``transformers``
   is installed; it is skipped at smoke size, where its import alone would take seconds).
   Only real (unpadded) positions are compared: what a padded position holds is not defined.

Reproduce: ``qkv ask 7 --size full``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch
from matplotlib.patches import Patch
from torch import Tensor, nn

from ..config import ModelConfig
from ..models import build_model
from ..models.common import n_params
from ..nn import masks
from ..nn.attention import MultiHeadAttention
from ..nn.block import EncoderLayer, Residual, build_encoder_layer
from ..nn.position import PositionTerms
from . import base, plots
from .table import Table, fmt

NUMBER = 7
TITLE = "Describe the encoder"
KEYWORD = "Encoder"
CLAIMS = [
    ("The encoder is embedding + position, then N layers of self-attention and FFN, each sublayer with a "
     "residual connection and LayerNorm."),
    "A layer has 4d² + 4d attention, 2·d·d_ff + d_ff + d FFN and 4d LayerNorm parameters.",
    "This is exactly what a reference implementation (PyTorch, Hugging Face BERT) computes.",
]
ANSWER = """\
The encoder maps token ids (B, T) to one d-wide vector per token (B, T, d):

    x = Embed(ids)·√d + PE(positions)                           (B, T, d)
    N times:  x = LayerNorm(x + MultiHeadSelfAttention(x, mask)) (post-LN, the 2017 paper)
              x = LayerNorm(x + W2·act(W1·x + b1) + b2)          FFN: d → d_ff → d per token
    (pre-LN: x = x + Sublayer(LayerNorm(x)), and one LayerNorm after the last layer)

Self-attention projects x to Q, K, V (B, H, T, D) with D = d/H, lets every token attend to every
real token in both directions (the padding mask removes padded keys; there is no causal mask),
and mixes the heads with W_o. The FFN is applied to each position independently. Residuals keep
a direct path for the signal and gradient; LayerNorm keeps each token's scale fixed.
Parameters per layer: Wq, Wk, Wv, Wo with biases 4d² + 4d; FFN 2·d·d_ff + d_ff + d; two
LayerNorms 4d. With d = 512, d_ff = 2048 that is 3.15M per layer, two thirds of it in the FFN.
The trace below shows every step's shape and parameters as qkv runs it; the parity numbers show
that PyTorch's TransformerEncoderLayer and Hugging Face's BERT compute the same thing to float32
rounding."""
FULL_SEEDS = 5
SMOKE_SEEDS = 2
MIN_SEEDS = 3  # fewer seeds: too few random weight draws to trust an exact match
TOLERANCE = 1e-5  # max abs difference; float32 rounding of these O(1) outputs is ~1e-6
SIZES = {"smoke": {"bert": False}, "full": {"bert": True}}
# The traced batch: sizes chosen distinct so each dimension can be named in the table
TRACE_BATCH, TRACE_LENGTHS = 2, (7, 4)
TRACE = dict(family="encoder", vocab_size=100, d_model=64, n_layers=2, n_heads=4, d_ff=256, max_len=32,
             dropout_embed=0.0, dropout_residual=0.0, dropout_attention=0.0, dropout_activation=0.0)
TRACE_VARIANTS = {
    "post-LN, sinusoidal": {},
    "pre-LN, sinusoidal": {"norm_placement": "pre"},
    "BERT-style (learned, segments, embed norm, GELU)": {"position": "learned", "type_vocab_size": 2,
                                                         "embed_norm": True, "embed_scale": False,
                                                         "activation": "gelu"},
}
PARITY = dict(family="encoder", vocab_size=96, d_model=32, n_layers=2, n_heads=4, d_ff=64, max_len=32,
              dropout_embed=0.0, dropout_residual=0.0, dropout_attention=0.0, dropout_activation=0.0)
PARITY_LENGTHS = (9, 6, 2)  # right-padded batch of three
BERT = dict(PARITY, position="learned", embed_norm=True, embed_scale=False, type_vocab_size=2,
            activation="gelu", norm_eps=1e-12, output_bias=True, final_norm=False)
CASES = ("layer_post", "layer_pre", "stack_post", "stack_pre", "bert")


# -- 1. the trace -------------------------------------------------------------------------------


def own_params(module: nn.Module | None) -> int:
    return n_params(module) if module is not None else 0


def trace_row(name: str, what: str, out: Tensor, params: int) -> dict[str, Any]:
    return {"module": name, "what": what, "shape": list(out.shape), "params": params}


def attention_rows(name: str, attn: MultiHeadAttention, x: Tensor) -> list[dict[str, Any]]:
    """q, k, v as the module makes them — its own fused projection, split into heads (B, H, T, D)."""
    q, k, v = attn._project_self(x)  # (B, H, T, D), (B, G, T, D), (B, G, T, D)
    return [trace_row(f"{name}.q_proj", "query heads", q, own_params(attn.q_proj)),
            trace_row(f"{name}.k_proj", "key heads", k, own_params(attn.k_proj)),
            trace_row(f"{name}.v_proj", "value heads", v, own_params(attn.v_proj))]


def residual_label(residual: Residual) -> str:
    return "norm → sublayer → + residual" if residual.placement == "pre" else "+ residual → LayerNorm"


def ffn_label(name: str) -> str:
    """``…ffn.down`` maps d_ff → d; ``…ffn.up`` (and a GLU's ``gate``) d → d_ff, before the activation."""
    matrix = name.rsplit(".", 1)[1]
    return "FFN down, d_ff → d" if matrix == "down" else f"FFN {matrix}, d → d_ff (pre-activation)"


def register_trace(stack: nn.Module, rows: list[dict]) -> list:
    """Hooks on every step of an encoder stack, each appending its row to ``rows`` when it runs."""
    front = own_params(stack.position) + own_params(stack.segment) + own_params(stack.embed_norm)
    hooks = [stack.embed.register_forward_hook(
                 lambda m, a, o: rows.append(trace_row("encoder.embed", "token embedding", o, own_params(m)))),
             # dropout's input is the finished front end: token·scale + position (+ segment, norm)
             stack.dropout.register_forward_pre_hook(
                 lambda m, a: rows.append(trace_row("encoder.position", "× scale + position → layer input",
                                                    a[0], front)))]
    for name, module in stack.named_modules(prefix="encoder"):
        if isinstance(module, MultiHeadAttention):
            hooks.append(module.register_forward_pre_hook(
                lambda m, a, name=name: rows.extend(attention_rows(name, m, a[0]))))
            hooks.append(module.out_proj.register_forward_hook(
                lambda m, a, o, name=name: rows.append(trace_row(f"{name}.out_proj", "heads mixed", o, own_params(m)))))
        elif isinstance(module, Residual):
            hooks.append(module.register_forward_hook(
                lambda m, a, o, name=name: rows.append(trace_row(name, residual_label(m), o, own_params(m)))))
        elif isinstance(module, nn.Linear) and ".ffn." in name:
            hooks.append(module.register_forward_hook(
                lambda m, a, o, name=name: rows.append(trace_row(name, ffn_label(name), o, own_params(m)))))
    if stack.final_norm is not None:
        hooks.append(stack.final_norm.register_forward_hook(
            lambda m, a, o: rows.append(trace_row("encoder.final_norm", "final LayerNorm", o, own_params(m)))))
    return hooks


@torch.no_grad()
def trace(cfg: ModelConfig) -> list[dict[str, Any]]:
    """One padded batch through the encoder stack of ``cfg``: a row per step, in call order."""
    model = build_model(cfg).eval()
    T = max(TRACE_LENGTHS)
    ids = torch.randint(4, cfg.vocab_size, (TRACE_BATCH, T), generator=torch.Generator().manual_seed(0))
    token_mask = torch.arange(T)[None, :] < torch.tensor(TRACE_LENGTHS)[:, None]  # (B, T)
    rows: list[dict] = []
    hooks = register_trace(model.encoder, rows)
    model.encoder(ids, token_mask)
    for hook in hooks:
        hook.remove()
    return rows


def formula_params(cfg: ModelConfig) -> dict[str, int]:
    """Encoder parameters from the formula (dot attention with biases, LayerNorm, two-matrix FFN)."""
    d, d_ff = cfg.d_model, cfg.d_ff
    attention = 4 * d * d + 4 * d  # Wq, Wk, Wv, Wo and their biases
    ffn = 2 * d * d_ff + d_ff + d  # W1 (d × d_ff) + b1, W2 (d_ff × d) + b2
    norms = 2 * 2 * d  # two LayerNorms, γ and β each
    front = cfg.vocab_size * d + (cfg.max_len * d if cfg.position == "learned" else 0)
    front += cfg.type_vocab_size * d + (2 * d if cfg.embed_norm else 0)
    final = 2 * d if cfg.use_final_norm else 0
    per_layer = attention + ffn + norms
    return {"attention": attention, "ffn": ffn, "norms": norms, "per_layer": per_layer, "front": front,
            "final_norm": final, "total": front + cfg.n_layers * per_layer + final}


def param_check(name: str, cfg: ModelConfig) -> dict[str, Any]:
    """Formula vs the model's count vs the trace's sum, for one encoder config."""
    model = build_model(cfg)
    rows = trace(cfg)
    layer = model.encoder.layers[0]
    return {"name": name, "formula": formula_params(cfg), "model_total": n_params(model.encoder),
            "model_per_layer": n_params(layer), "model_attention": n_params(layer.self_attn),
            "model_ffn": n_params(layer.ffn), "trace_total": sum(r["params"] for r in rows), "trace": rows}


# -- 2. parity ----------------------------------------------------------------------------------


def perturb(module: nn.Module, g: torch.Generator) -> None:
    """Move every parameter off its init (γ = 1, β = 0, biases 0), so a misplaced tensor shows."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.1)


def padded_batch(g: torch.Generator, vocab: int) -> tuple[Tensor, Tensor]:
    """ids ``(B, T)`` with right padding (pad id 0) and token_mask ``(B, T)``, True = real token."""
    T = max(PARITY_LENGTHS)
    token_mask = torch.arange(T)[None, :] < torch.tensor(PARITY_LENGTHS)[:, None]  # (B, T)
    ids = torch.randint(4, vocab, (len(PARITY_LENGTHS), T), generator=g)
    return ids.masked_fill(~token_mask, 0), token_mask


def torch_layer(layer: EncoderLayer, cfg: ModelConfig) -> nn.TransformerEncoderLayer:
    """``torch.nn.TransformerEncoderLayer`` holding a copy of the qkv layer's weights."""
    ref = nn.TransformerEncoderLayer(cfg.d_model, cfg.n_heads, cfg.d_ff, dropout=0.0, activation=cfg.activation,
                                     layer_norm_eps=cfg.norm_eps, batch_first=True,
                                     norm_first=cfg.norm_placement == "pre")
    a = layer.self_attn
    with torch.no_grad():
        ref.self_attn.in_proj_weight.copy_(torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight]))
        ref.self_attn.in_proj_bias.copy_(torch.cat([a.q_proj.bias, a.k_proj.bias, a.v_proj.bias]))
        for mine, theirs in ((a.out_proj, ref.self_attn.out_proj), (layer.ffn.up, ref.linear1),
                             (layer.ffn.down, ref.linear2), (layer.sub_attn.norm, ref.norm1),
                             (layer.sub_ffn.norm, ref.norm2)):
            theirs.weight.copy_(mine.weight)
            theirs.bias.copy_(mine.bias)
    return ref.eval()


@torch.no_grad()
def layer_parity(placement: str, seed: int) -> float:
    """Max |qkv EncoderLayer − torch TransformerEncoderLayer| over the real tokens of a padded batch."""
    cfg = ModelConfig(**PARITY, norm_placement=placement)
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    layer = build_encoder_layer(cfg).eval()
    perturb(layer, g)
    ref = torch_layer(layer, cfg)
    _, token_mask = padded_batch(g, cfg.vocab_size)
    x = torch.randn(*token_mask.shape, cfg.d_model, generator=g)  # (B, T, d)
    mine = layer(x, masks.padding_mask(token_mask), PositionTerms(), token_mask)  # (B, T, d)
    theirs = ref(x, src_key_padding_mask=~token_mask)  # PyTorch's mask: True = padding
    return float((mine - theirs)[token_mask].abs().max())


def sinusoids(T: int, d: int) -> Tensor:
    """PE(p, 2i) = sin(p / 10000^(2i/d)), PE(p, 2i+1) = cos(p / 10000^(2i/d)) (§3.5) → ``(T, d)``."""
    p = torch.arange(T, dtype=torch.float32)[:, None]  # (T, 1)
    angle = p / 10000 ** (torch.arange(0, d, 2, dtype=torch.float32) / d)  # (T, d/2)
    pe = torch.zeros(T, d)
    pe[:, 0::2], pe[:, 1::2] = angle.sin(), angle.cos()
    return pe


def described_encoder(stack: nn.Module, cfg: ModelConfig, ids: Tensor, token_mask: Tensor) -> Tensor:
    """The encoder as described, from PyTorch parts and the stack's weights: embedding·√d +
    sinusoids, N ``TransformerEncoderLayer``, a final LayerNorm when pre-LN. ``(B, T)`` → ``(B, T, d)``."""
    x = stack.embed.weight[ids] * math.sqrt(cfg.d_model) + sinusoids(ids.shape[1], cfg.d_model)  # (B, T, d)
    for layer in stack.layers:
        x = torch_layer(layer, cfg)(x, src_key_padding_mask=~token_mask)
    if cfg.use_final_norm:
        norm = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps)  # PyTorch's, with qkv's γ and β
        norm.load_state_dict(stack.final_norm.state_dict())
        x = norm(x)
    return x


@torch.no_grad()
def stack_parity(placement: str, seed: int) -> float:
    """Max |qkv encoder − the described encoder| over the real tokens of a padded batch."""
    cfg = ModelConfig(**PARITY, norm_placement=placement)
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = build_model(cfg).eval()
    perturb(model, g)
    ids, token_mask = padded_batch(g, cfg.vocab_size)
    mine = model.encoder(ids, token_mask)  # (B, T, d)
    theirs = described_encoder(model.encoder, cfg, ids, token_mask)
    return float((mine - theirs)[token_mask].abs().max())


@torch.no_grad()
def bert_parity(seed: int) -> float:
    """Max |qkv BERT-config encoder − Hugging Face BertModel| (weights copied by ``to_hf``)."""
    from ..interop import to_hf  # imports transformers: only when this runs

    cfg = ModelConfig(**BERT)
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = build_model(cfg).eval()
    perturb(model, g)
    hf_bert = to_hf(model).bert  # BertForMaskedLM's body is a BertModel
    ids, token_mask = padded_batch(g, cfg.vocab_size)
    segments = ((torch.arange(ids.shape[1])[None, :] >= 3) & token_mask).long()  # A A A B B … then pad
    mine = model.encoder(ids, token_mask, segments=segments)  # (B, T, d)
    theirs = hf_bert(input_ids=ids, attention_mask=token_mask.long(), token_type_ids=segments).last_hidden_state
    return float((mine - theirs)[token_mask].abs().max())


def transformers_available() -> bool:
    try:
        import transformers  # noqa: F401
    except ImportError:
        return False
    return True


def parity(seed: int, bert: bool) -> list[dict[str, Any]]:
    cells = [("layer_post", "torch.nn.TransformerEncoderLayer", lambda: layer_parity("post", seed)),
             ("layer_pre", "torch.nn.TransformerEncoderLayer (norm_first)", lambda: layer_parity("pre", seed)),
             ("stack_post", "embedding·√d + sinusoids + N torch layers", lambda: stack_parity("post", seed)),
             ("stack_pre", "… + final nn.LayerNorm (pre-LN)", lambda: stack_parity("pre", seed))]
    if bert:
        cells.append(("bert", "transformers BertModel", lambda: bert_parity(seed)))
    return [{"case": case, "reference": ref, "seed": seed, "max_abs_diff": measure()} for case, ref, measure in cells]


def run(size: str, seeds: int, out: Path) -> dict[str, Any]:
    started = time.perf_counter()
    bert = SIZES[size]["bert"] and transformers_available()
    checks = [param_check(name, ModelConfig(**{**TRACE, **change})) for name, change in TRACE_VARIANTS.items()]
    results = {"param_checks": checks, "parity": [c for seed in range(seeds) for c in parity(seed, bert)],
               "bert": "run" if bert else ("skipped at smoke size" if size == "smoke" else
                                           "skipped: transformers is not installed")}
    config = {**SIZES[size], "trace_config": TRACE, "trace_variants": TRACE_VARIANTS, "trace_batch": TRACE_BATCH,
              "trace_lengths": list(TRACE_LENGTHS), "parity_config": PARITY, "parity_lengths": list(PARITY_LENGTHS),
              "bert_config": BERT, "tolerance": TOLERANCE, "precision": "fp32"}
    names = [plot_params(checks[0], out), plot_parity(results["parity"], out)]
    return base.finish(verdict, base.record(NUMBER, size, seeds, out, config, results, names, started), out)


# -- plots, verdict, tables ---------------------------------------------------------------------


PARTS = {"embedding": "C0", "attention": "C1", "FFN": "C2", "norms": "C7"}


def part(module: str) -> str:
    """Which part of the encoder a traced step belongs to (its bar colour)."""
    if module.endswith(("sub_attn", "sub_ffn", "norm")):
        return "norms"
    if module.endswith(("embed", "position")):
        return "embedding"
    return "attention" if ".self_attn." in module else "FFN"


def plot_params(check: dict[str, Any], out: Path) -> str:
    fig, (ax,) = plots.figure(1, width=9.0, height=4.6)
    rows = [r for r in check["trace"] if r["params"] > 0]
    ax.barh(range(len(rows)), [r["params"] for r in rows], color=[PARTS[part(r["module"])] for r in rows])
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([r["module"].removeprefix("encoder.") for r in rows], fontsize=7)
    ax.invert_yaxis()  # call order from top to bottom
    ax.legend(handles=[Patch(color=color, label=name) for name, color in PARTS.items()], fontsize=8)
    ax.set(xlabel="parameters (count)", title=f"{check['name']}: parameters per step, in call order "
                                             f"(total {check['model_total']:,})")
    return plots.save(fig, out, "q07_params.png")


def plot_parity(cells: list[dict[str, Any]], out: Path) -> str:
    fig, (ax,) = plots.figure(1, width=7.0)
    cases = [c for c in CASES if any(x["case"] == c for x in cells)]
    for i, case in enumerate(cases):
        diffs = [max(x["max_abs_diff"], 1e-12) for x in cells if x["case"] == case]  # 0 drawn at 1e-12
        plots.seed_points(ax, i, diffs, f"C{i}", width=0.3)
    ax.axhline(TOLERANCE, color="C3", linestyle="--", label=f"tolerance {TOLERANCE:g}")
    ax.set(yscale="log", xticks=range(len(cases)), ylabel="max |qkv − reference| (log)",
           title="encoder parity with copied weights, each seed a point")
    ax.set_xticklabels(cases, fontsize=8)
    ax.legend(fontsize=8)
    return plots.save(fig, out, "q07_parity.png")


def worst_by_case(metrics: dict[str, Any]) -> dict[str, float]:
    worst: dict[str, float] = {}
    for cell in metrics["results"]["parity"]:
        worst[cell["case"]] = max(worst.get(cell["case"], 0.0), cell["max_abs_diff"])
    return worst


def count_mismatches(metrics: dict[str, Any]) -> list[str]:
    """Configs whose formula, model count and trace sum are not all equal."""
    return [f"{c['name']}: formula {c['formula']['total']}, model {c['model_total']}, trace {c['trace_total']}"
            for c in metrics["results"]["param_checks"]
            if not c["formula"]["total"] == c["model_total"] == c["trace_total"]]


def verdict(metrics: dict[str, Any]) -> tuple[str, str]:
    smoke = base.smoke_verdict(metrics)
    if smoke:
        return smoke
    if metrics["seeds"] < MIN_SEEDS:
        return "inconclusive", (f"{metrics['seeds']} seeds of random weights are too few; "
                                f"at least {MIN_SEEDS} are needed")
    worst, wrong = worst_by_case(metrics), count_mismatches(metrics)
    diffs = ", ".join(f"{case} {diff:.2e}" for case, diff in worst.items())
    bert = "" if "bert" in worst else f" (BERT parity {metrics['results']['bert']})"
    if wrong:
        return "refuted", f"parameter counts disagree with the formula: {'; '.join(wrong)}"
    failed = [case for case, diff in worst.items() if diff > TOLERANCE]
    if failed:
        return "refuted", (f"{', '.join(failed)} differ from the reference beyond {TOLERANCE:g} "
                           f"(worst max abs difference per case: {diffs})")
    totals = ", ".join(f"{c['formula']['total']:,}" for c in metrics["results"]["param_checks"])
    return "confirmed", (f"every case matches its reference within {TOLERANCE:g} (worst max abs difference per "
                         f"case over {metrics['seeds']} seeds: {diffs}){bert}, and formula, model and trace "
                         f"agree on the parameters of every traced config ({totals})")


def named_shape(shape: list[int], names: dict[int, str]) -> str:
    return "(" + ", ".join(names.get(n, str(n)) for n in shape) + ")"


def tables(metrics: dict[str, Any]) -> list[Table]:
    """The post-LN trace (shape named by dimension), the parameter checks, the parity per case."""
    cfg, r = metrics["config"]["trace_config"], metrics["results"]
    names = {metrics["config"]["trace_batch"]: "B", max(metrics["config"]["trace_lengths"]): "T",
             cfg["d_model"]: "d", cfg["n_heads"]: "H", cfg["d_model"] // cfg["n_heads"]: "D", cfg["d_ff"]: "d_ff"}
    first = r["param_checks"][0]
    trace_rows = [[row["module"], row["what"], str(tuple(row["shape"])), named_shape(row["shape"], names),
                   f"{row['params']:,}"] for row in first["trace"]]
    trace_rows.append(["total", "sum of the rows", "", "", f"{first['trace_total']:,}"])
    checks = [[c["name"], f"{c['formula']['per_layer']:,}", f"{c['model_per_layer']:,}",
               f"{c['formula']['attention']:,} / {c['model_attention']:,}",
               f"{c['formula']['ffn']:,} / {c['model_ffn']:,}", f"{c['formula']['total']:,}",
               f"{c['model_total']:,}", f"{c['trace_total']:,}"] for c in r["param_checks"]]
    by_case: dict[str, list[dict]] = {}
    for cell in r["parity"]:
        by_case.setdefault(cell["case"], []).append(cell)
    parity_rows = [[case, cells[0]["reference"], fmt(max(c["max_abs_diff"] for c in cells)),
                    fmt(base.mean([c["max_abs_diff"] for c in cells])), str(len(cells))]
                   for case, cells in by_case.items()]
    return [(["module", "step", "output shape", "named", "parameters"], trace_rows),
            (["config", "per layer, formula", "per layer, model", "attention formula / model",
              "FFN formula / model", "total, formula", "total, model", "total, trace"], checks),
            (["case", "reference", "worst max |diff|", "mean max |diff|", "seeds"], parity_rows)]
