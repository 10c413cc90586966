"""Training speed and memory of qkv against its peers, on identical shapes, in one run.

Question: is qkv's readability paid for in training speed? Claim under test: a qkv model trains
within a small factor of Hugging Face, ``torch.nn.Transformer`` and x-transformers built to the
same shape and parameter count (within 5%).

Rerun (from the repository root; the JSON goes to stdout and to ``--out``)::

    python -m benchmarks.train_speed --device cpu --threads 2 --out runs/bench/train_speed.json
    python -m benchmarks.train_speed --quick   # vocab 2,000, d=128, 2(+2) layers: what ``qkv bench`` runs

Tasks (``--size full``):

* ``seq2seq`` — vocab 8,000, d=256, 4 heads, FFN 1,024, 3+3 layers, ReLU, post-norm, sinusoidal
  positions, tied embeddings, batch 32 × (source 64, target 64), right-padded to random lengths
  in [¾·64, 64] (the same batch for every peer). Peers: ``hf_marian`` (``MarianMTModel``),
  ``torch_transformer`` (``nn.Transformer`` + embedding, sinusoids and tied output projection),
  ``x_transformers`` (``XTransformer``, post-norm, ReLU, flash/SDPA attention).
* ``lm`` — GPT-2 wiring (learned positions, pre-norm, tanh-GELU, no embedding scale): vocab
  8,000, d=256, 4 layers, 4 heads, FFN 1,024, batch 16 × 256, no padding. Peer: ``hf_gpt2``.

A step is forward + cross-entropy + backward + ``AdamW(lr=1e-4, fused=True)`` step, fp32. Dropout is the
same probability in every dropout knob each library exposes (default 0: no dropout anywhere,
so every peer does the same arithmetic). Tokens counted: target positions B·T_tgt for seq2seq
(padding included: every peer computes them), all B·T positions for the LM.

Model FLOPs per step, the same formula for every peer (d = d_model, f = d_ff, V = vocab)::

    6 · Σ N_matmul · tokens_through_it  +  12 · Σ_layers T_q · T_k · d · B
    N_matmul per encoder layer 4d² + 2df (over source tokens); per decoder layer 6d² + 2df over
    target tokens plus 2d² (cross-attention K, V) over source tokens; output projection d·V over
    target tokens. Attention terms: encoder S·S, decoder self T·T and cross T·S (causal not halved).

MFU = achieved model FLOP/s ÷ this machine's fp32 matmul rate: a 2048² matmul timed in the same
interleaved rounds as the peers (so under the same load on a shared machine).
Peak memory: ``total_peak_mib`` (model, gradients, AdamW state and activations: from just before
the model is built to the peak of two steps) and ``step_peak_mib`` (a steady-state step's rise
above its start), each in a fresh process per peer (see ``benchmarks.common``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

if __package__ in (None, ""):  # run as a file, not with -m: make `benchmarks.common` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import common  # noqa: E402


@dataclass(frozen=True)
class Shape:
    """One task's sizes. Seq2seq uses ``layers`` encoder and ``layers`` decoder layers."""

    task: str  # "seq2seq" or "lm"
    vocab: int
    d: int
    heads: int
    d_ff: int
    layers: int
    batch: int
    length: int  # source and target length (seq2seq) or sequence length (lm)
    dropout: float = 0.0


SIZES: dict[str, dict[str, Shape]] = {
    "full": dict(seq2seq=Shape("seq2seq", 8000, 256, 4, 1024, 3, 32, 64),
                 lm=Shape("lm", 8000, 256, 4, 1024, 4, 16, 256)),
    "quick": dict(seq2seq=Shape("seq2seq", 2000, 128, 4, 512, 2, 8, 32),
                  lm=Shape("lm", 2000, 128, 4, 512, 2, 4, 128)),
    "tiny": dict(seq2seq=Shape("seq2seq", 500, 32, 4, 64, 1, 4, 16),
                 lm=Shape("lm", 500, 32, 4, 64, 1, 4, 16)),
}
SCHEDULE = dict(  # warm-up steps, timed rounds, and the least time a timed window lasts
    full=dict(warmup=2, rounds=11, min_window_s=0.5),
    quick=dict(warmup=2, rounds=3, min_window_s=0.3),
    tiny=dict(warmup=1, rounds=2, min_window_s=0.05),
)


# ---------------------------------------------------------------------------------------------
# the peers: each builds a model of the task's shape and says how to get logits from a batch
# (kept in this file, not one per peer, so the whole comparison reads in one place)


@dataclass
class Peer:
    model: nn.Module
    logits: Callable[[dict[str, Tensor]], Tensor]  # batch -> (B, T, V)
    notes: str = ""


def qkv_seq2seq(s: Shape, device: str) -> Peer:
    import qkv

    p = s.dropout
    cfg = qkv.ModelConfig(
        family="seq2seq", vocab_size=s.vocab, d_model=s.d, n_heads=s.heads, d_ff=s.d_ff, n_layers=s.layers,
        activation="relu", norm_placement="post", position="sinusoidal", output_bias=True,
        dropout_embed=p, dropout_residual=p, dropout_attention=p, dropout_activation=p,
    )
    model = qkv.build_model(cfg).to(device)
    return Peer(model, lambda b: model(b["src"], b["tgt_in"], b["src_mask"], b["tgt_mask"]), "fused SDPA path")


def hf_marian(s: Shape, device: str) -> Peer:
    from transformers import MarianConfig, MarianMTModel

    p = s.dropout
    cfg = MarianConfig(
        vocab_size=s.vocab, d_model=s.d, encoder_layers=s.layers, decoder_layers=s.layers,
        encoder_attention_heads=s.heads, decoder_attention_heads=s.heads, encoder_ffn_dim=s.d_ff,
        decoder_ffn_dim=s.d_ff, activation_function="relu", dropout=p, attention_dropout=p,
        activation_dropout=p, scale_embedding=True, max_position_embeddings=max(s.length, 64),
        pad_token_id=0, eos_token_id=3, bos_token_id=2, decoder_start_token_id=0,
    )
    model = MarianMTModel(cfg).to(device)

    def logits(b: dict[str, Tensor]) -> Tensor:
        return model(input_ids=b["src"], attention_mask=b["src_mask"].long(), decoder_input_ids=b["tgt_in"],
                     decoder_attention_mask=b["tgt_mask"].long()).logits

    return Peer(model, logits, f"attn_implementation={model.config._attn_implementation}")


class TorchSeq2Seq(nn.Module):
    """``nn.Transformer`` plus what it leaves out: a shared embedding ·√d, sinusoids, and a tied
    output projection with a bias (Marian's layout)."""

    def __init__(self, s: Shape) -> None:
        super().__init__()
        self.embed = nn.Embedding(s.vocab, s.d)
        nn.init.normal_(self.embed.weight, std=s.d**-0.5)
        pos = torch.arange(max(s.length, 64))[:, None] / 10000 ** (torch.arange(0, s.d, 2) / s.d)
        self.register_buffer("pe", torch.cat([pos.sin(), pos.cos()], dim=-1), persistent=False)  # (L, d)
        self.transformer = nn.Transformer(
            s.d, s.heads, s.layers, s.layers, s.d_ff, s.dropout, activation="relu", batch_first=True
        )
        self.bias = nn.Parameter(torch.zeros(s.vocab))
        self.dropout = nn.Dropout(s.dropout)
        self.scale = math.sqrt(s.d)

    def forward(self, src: Tensor, tgt: Tensor, src_mask: Tensor, tgt_mask: Tensor) -> Tensor:
        def embed(ids: Tensor) -> Tensor:
            return self.dropout(self.embed(ids) * self.scale + self.pe[: ids.shape[1]])

        T = tgt.shape[1]
        future = torch.ones(T, T, dtype=torch.bool, device=tgt.device).triu(1)  # torch: True = blocked
        h = self.transformer(
            embed(src), embed(tgt), tgt_mask=future, src_key_padding_mask=~src_mask,
            tgt_key_padding_mask=~tgt_mask, memory_key_padding_mask=~src_mask, tgt_is_causal=True,
        )
        return F.linear(h, self.embed.weight, self.bias)  # (B, T, V)


def torch_transformer(s: Shape, device: str) -> Peer:
    model = TorchSeq2Seq(s).to(device)
    return Peer(model, lambda b: model(b["src"], b["tgt_in"], b["src_mask"], b["tgt_mask"]), "nn.Transformer")


def x_transformer(s: Shape, device: str) -> Peer:
    from x_transformers import XTransformer

    p, side = s.dropout, {}
    for prefix in ("enc_", "dec_"):
        side.update({prefix + k: v for k, v in dict(
            num_tokens=s.vocab, depth=s.layers, heads=s.heads, max_seq_len=max(s.length, 64),
            ff_mult=s.d_ff / s.d, pre_norm=False, scaled_sinu_pos_emb=True, attn_flash=True,
            ff_custom_activation=nn.ReLU(), emb_dropout=p, attn_dropout=p, ff_dropout=p,
            attn_sublayer_dropout=p, ff_sublayer_dropout=p, attn_dim_head=s.d // s.heads,
        ).items()})
    model = XTransformer(dim=s.d, tie_token_emb=True, **side).to(device)
    # XTransformer cannot tie its decoder's output projection (``tie_embedding`` is not routed to
    # the decoder), so drop that untied (V, d) matrix and project onto the shared table below.
    model.decoder.net.to_logits = None
    table = model.encoder.token_emb.emb.weight  # (V, d)

    def logits(b: dict[str, Tensor]) -> Tensor:
        memory = model.encoder(b["src"], mask=b["src_mask"], return_embeddings=True)
        h = model.decoder.net(b["tgt_in"], mask=b["tgt_mask"], context=memory, context_mask=b["src_mask"],
                              return_embeddings=True)  # (B, T, d)
        return F.linear(h, table)

    return Peer(model, logits, "post-norm, ReLU, attn_flash=True (SDPA)")


def qkv_lm(s: Shape, device: str) -> Peer:
    import qkv

    p = s.dropout
    cfg = qkv.ModelConfig(
        family="lm", vocab_size=s.vocab, d_model=s.d, n_heads=s.heads, d_ff=s.d_ff, n_layers=s.layers,
        position="learned", norm_placement="pre", activation="gelu_tanh", embed_scale=False, max_len=s.length,
        dropout_embed=p, dropout_residual=p, dropout_attention=p, dropout_activation=p,
    )
    model = qkv.build_model(cfg).to(device)
    return Peer(model, lambda b: model(b["input_ids"]), "fused SDPA path")


def hf_gpt2(s: Shape, device: str) -> Peer:
    from transformers import GPT2Config, GPT2LMHeadModel

    p = s.dropout
    cfg = GPT2Config(
        vocab_size=s.vocab, n_positions=s.length, n_embd=s.d, n_layer=s.layers, n_head=s.heads,
        n_inner=s.d_ff, activation_function="gelu_new", resid_pdrop=p, embd_pdrop=p, attn_pdrop=p,
        bos_token_id=2, eos_token_id=3,
    )
    model = GPT2LMHeadModel(cfg).to(device)
    return Peer(model, lambda b: model(input_ids=b["input_ids"]).logits,
                f"attn_implementation={model.config._attn_implementation}")


PEERS: dict[str, dict[str, Callable[[Shape, str], Peer]]] = {
    "seq2seq": dict(qkv=qkv_seq2seq, hf_marian=hf_marian, torch_transformer=torch_transformer,
                    x_transformers=x_transformer),
    "lm": dict(qkv=qkv_lm, hf_gpt2=hf_gpt2),
}


# ---------------------------------------------------------------------------------------------
# the batch, the FLOP count, the step


def make_batch(shape: Shape, device: str, seed: int = 0) -> dict[str, Tensor]:
    """The one batch every peer trains on. Masks are bool, True = real token.

    seq2seq: src, tgt_in ``(B, L)`` right-padded with 0 to lengths in [¾L, L], their masks and
    labels (-100 at padding). lm: input_ids ``(B, L)`` and labels (the next token).
    """
    g = torch.Generator().manual_seed(seed)
    B, L = shape.batch, shape.length
    if shape.task == "lm":
        ids = torch.randint(4, shape.vocab, (B, L + 1), generator=g)
        return dict(input_ids=ids[:, :-1].to(device), labels=ids[:, 1:].to(device))

    def padded() -> tuple[Tensor, Tensor]:
        lengths = torch.randint(math.ceil(0.75 * L), L + 1, (B,), generator=g)
        mask = torch.arange(L)[None, :] < lengths[:, None]  # (B, L)
        return torch.randint(4, shape.vocab, (B, L), generator=g).masked_fill(~mask, 0), mask

    (src, src_mask), (tgt, tgt_mask) = padded(), padded()
    labels = tgt.roll(-1, dims=1).masked_fill(~tgt_mask.roll(-1, dims=1), -100)
    labels[:, -1] = -100
    batch = dict(src=src, src_mask=src_mask, tgt_in=tgt, tgt_mask=tgt_mask, labels=labels)
    return {k: v.to(device) for k, v in batch.items()}


def tokens_per_step(shape: Shape) -> int:
    return shape.batch * shape.length


def model_flops(shape: Shape) -> int:
    """Training FLOPs of one step, from the shape alone (formula in the module docstring)."""
    d, f, V, B, L, n = shape.d, shape.d_ff, shape.vocab, shape.batch, shape.length, shape.layers
    tokens = B * L
    if shape.task == "lm":
        matmul = common.dense_train_flops(n * (4 * d * d + 2 * d * f) + d * V, tokens)
        return matmul + n * B * common.attention_train_flops(L, L, d)
    encoder = common.dense_train_flops(n * (4 * d * d + 2 * d * f), tokens)
    cross_kv = common.dense_train_flops(n * 2 * d * d, tokens)
    decoder = common.dense_train_flops(n * (6 * d * d + 2 * d * f) + d * V, tokens)
    attention = n * B * 3 * common.attention_train_flops(L, L, d)  # encoder, self, cross
    return encoder + cross_kv + decoder + attention


def loss_of(peer: Peer, batch: dict[str, Tensor]) -> Tensor:
    """Mean cross-entropy of the peer's logits ``(B, T, V)`` against ``labels`` ``(B, T)``."""
    logits = peer.logits(batch)
    return F.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten(), ignore_index=-100)


def make_step(peer: Peer, batch: dict[str, Tensor]) -> Callable[[], None]:
    """One training step: forward, cross-entropy over the vocabulary, backward, AdamW.

    AdamW is torch's fused kernel for every peer: the optimizer is common to all and its work
    identical, and the unfused one (~10 small ops per parameter tensor, each a parallel region)
    mostly measures how often the shared machine preempts a thread, not the models.
    """
    params = [p for p in peer.model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, fused=True)
    peer.model.train()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_of(peer, batch).backward()
        opt.step()

    return step


def trainable_params(model: nn.Module) -> int:
    """Distinct trainable parameters (a tied matrix counts once; frozen sinusoids not at all)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters() if p.requires_grad}.values())


# ---------------------------------------------------------------------------------------------
# memory, one fresh process per peer


def memory_child(task: str, peer: str, shape: Shape, device: str, threads: int) -> dict[str, float]:
    """Runs inside the child: peak memory of building ``peer`` and training it two steps."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    # One step at the tiny size first, so imports, lazy module loading and thread pools are not
    # counted as the model's memory.
    tiny = SIZES["tiny"][task]
    make_step(PEERS[task][peer](tiny, device), make_batch(tiny, device))()
    batch = make_batch(shape, device)
    with common.PeakMemory(device) as total:
        built = PEERS[task][peer](shape, device)
        step = make_step(built, batch)
        step()  # allocates gradients and the AdamW state
        with common.PeakMemory(device) as steady:
            step()
    return dict(total_peak_mib=common.rounded(total.peak_mib), step_peak_mib=common.rounded(steady.peak_mib))


def measure_memory(shape: Shape, peers: list[str], device: str, threads: int, jobs: int) -> list[dict[str, float]]:
    """:func:`memory_child` for each peer, each in its own process."""
    calls = [
        ("benchmarks.train_speed", ["--memory-child", f"{shape.task}:{peer}", "--device", device,
                                    "--threads", str(threads), "--shape", format_shape(shape)])
        for peer in peers
    ]
    return common.run_children(calls, jobs)


def format_shape(shape: Shape) -> str:
    """``task=seq2seq,vocab=8000,...``: a shape on a child's command line (see :func:`parse_shape`)."""
    return ",".join(f"{k}={v}" for k, v in dataclasses.asdict(shape).items())


def parse_shape(text: str) -> Shape:
    types = {f.name: f.type for f in dataclasses.fields(Shape)}
    cast = {"str": str, "int": int, "float": float}
    items = dict(kv.split("=", 1) for kv in text.split(","))
    return Shape(**{k: cast[types[k]](v) for k, v in items.items()})


# ---------------------------------------------------------------------------------------------
# one task: every peer timed interleaved, then memory, then the ratios


MATMUL = "_matmul_peak"


def run_task(shape: Shape, *, device: str, threads: int, schedule: dict[str, float],
             memory_jobs: int = 2) -> dict[str, Any]:
    """Time every peer of ``shape.task`` and the square matmul interleaved, then measure each
    peer's memory (``memory_jobs`` processes at a time; 0 skips memory). MFU divides by the
    matmul's median GFLOP/s from the same rounds."""
    torch.manual_seed(0)
    batch = make_batch(shape, device)
    peers = {name: build(shape, device) for name, build in PEERS[shape.task].items()}
    steps = {name: make_step(peer, batch) for name, peer in peers.items()}
    matmul, matmul_flops = common.square_matmul(device, n=512 if shape.d < 64 else 2048)
    timings = common.time_interleaved({**steps, MATMUL: matmul}, device=device, **schedule)
    peak_gflops = matmul_flops / timings.pop(MATMUL)["median_s"] / 1e9  # under the peers' load
    flops, tokens = model_flops(shape), tokens_per_step(shape)
    qkv_params = trainable_params(peers["qkv"].model)
    rows: dict[str, dict[str, Any]] = {}
    for name, peer in peers.items():
        t = timings[name]
        n = trainable_params(peer.model)
        rows[name] = dict(
            params=n, params_vs_qkv=common.rounded(n / qkv_params), notes=peer.notes,
            step_s_median=common.rounded(t["median_s"]), step_s_min=common.rounded(t["min_s"]),
            step_s_max=common.rounded(t["max_s"]), steps_timed=t["calls"], step_s_windows=t["windows_s"],
            tokens_per_s=common.rounded(tokens / t["median_s"]),
            gflops=common.rounded(flops / t["median_s"] / 1e9),
            mfu=common.rounded(flops / t["median_s"] / 1e9 / peak_gflops),
        )
    del peers, steps
    if memory_jobs:
        for name, mem in zip(rows, measure_memory(shape, list(rows), device, threads, memory_jobs)):
            rows[name].update(mem)
    return dict(
        shape=dataclasses.asdict(shape), tokens_per_step=tokens, model_gflop_per_step=common.rounded(flops / 1e9),
        matmul_peak_gflops=common.rounded(peak_gflops),
        params_within_5pct=all(abs(r["params_vs_qkv"] - 1) <= 0.05 for r in rows.values()),
        peers=rows, qkv_over_peer=ratios(rows, timings),
    )


def ratios(rows: dict[str, dict[str, Any]], timings: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """qkv's number ÷ each peer's: > 1 means qkv is faster (tokens/s) or hungrier (memory).

    ``tokens_per_s_paired`` is the median of per-round speed ratios (windows run back to back),
    the steadier estimate on a shared machine; ``tokens_per_s`` divides the two medians.
    """
    keys = ("tokens_per_s", "total_peak_mib", "step_peak_mib")
    q = rows["qkv"]
    out = {}
    for name, row in rows.items():
        if name == "qkv":
            continue
        out[name] = {k: common.rounded(q[k] / row[k]) for k in keys if k in row and row[k] > 0}
        paired = common.paired_ratio(timings[name]["windows_s"], timings["qkv"]["windows_s"])
        out[name]["tokens_per_s_paired"] = common.rounded(paired)
    return out


def run(size: str = "full", *, device: str = "cpu", threads: int = 2, tasks: tuple[str, ...] = ("seq2seq", "lm"),
        dropout: float = 0.0, memory_jobs: int = 2) -> dict[str, Any]:
    """The whole benchmark as a JSON-able dict (``main`` prints it)."""
    torch.set_num_threads(threads)
    shapes = {k: dataclasses.replace(s, dropout=dropout) for k, s in SIZES[size].items()}
    result: dict[str, Any] = dict(
        benchmark="train_speed", size=size, **common.environment(device, threads),
        precision="fp32", optimizer="AdamW(lr=1e-4, fused=True)", dropout=dropout,
        tokens_counted="seq2seq: target positions B*T_tgt (padding included); lm: all B*T positions",
        mfu_denominator="median GFLOP/s of a square fp32 matmul timed in the same interleaved rounds",
        schedule=SCHEDULE[size], tasks={},
    )
    for task in tasks:
        result["tasks"][task] = run_task(shapes[task], device=device, threads=threads, schedule=SCHEDULE[size],
                                         memory_jobs=memory_jobs)
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.memory_child:
        task, peer = args.memory_child.split(":")
        result = memory_child(task, peer, parse_shape(args.shape), args.device, args.threads)
        print(json.dumps(result))
        return result
    result = run("quick" if args.quick else args.size, device=args.device, threads=args.threads,
                 tasks=tuple(args.tasks), dropout=args.dropout, memory_jobs=args.memory_jobs)
    common.emit(result, args.out)
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = common.base_parser(__doc__.split("\n\n")[0], SIZES)
    p.add_argument("--tasks", nargs="+", default=["seq2seq", "lm"], choices=["seq2seq", "lm"])
    p.add_argument("--dropout", type=float, default=0.0, help="every dropout knob of every peer")
    p.add_argument("--memory-jobs", type=int, default=2, help="memory processes at a time (0: skip memory)")
    p.add_argument("--out", help="also write the JSON here")
    p.add_argument("--memory-child", help=argparse.SUPPRESS)
    p.add_argument("--shape", help=argparse.SUPPRESS)
    return p.parse_args(argv)


if __name__ == "__main__":
    main()
