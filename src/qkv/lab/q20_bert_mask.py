"""Question 20: why does BERT use [MASK] tokens rather than attention masking? (BERT mask)

Claims under test (as commonly answered): hiding a token from the model by masking its
attention column (no query may attend to key i) works in a 1-layer encoder but not in a deeper
one — a neighbour j reads token i in layer 1 and position i reads j in layer 2 — so an MLM
trained that way predicts the hidden token from the leak: its loss collapses and it fails when
the token is really absent. BERT therefore replaces the token in the input; and it does so only
80% of the time (10% random, 10% kept), because a model that only ever saw [MASK] at the
positions it predicts never learns to represent the tokens it can see (a pretrain/fine-tune
mismatch, [MASK] never occurs in fine-tuning), which is said to cost downstream accuracy.

Method, on SST-2's training phrases (WordPiece, post-norm BERT-wiring encoders with rotary
positions, no dropout), every number per seed; runs of a seed share initial weights, batches
and the 15% of positions selected for prediction. Three ways to hide a selected token:
- ``mask``: the input holds [MASK] there (BERT; "100%", or BERT's 80/10/10 corruption);
- ``column``: the input holds the real token and ``Stack.mask_hook`` takes the selected keys
  away from every query, the token's own position included;
- ``query``: the real sentence is interleaved with a content-free query stream (a [MASK] slot
  per position, XLNet's two-stream idea); content slots attend to all content, a query slot to
  the unselected content and itself, and the prediction for position i is read at its slot.
1. Leak, exactly: the largest change of the final hidden state at the hidden positions when
   the hidden tokens are swapped for random ones (and, for ``column``, at all other positions).
2. Cheating: train each scheme at 1 and 2 layers; score held-out (dev) MLM loss and accuracy at
   the selected positions (a) the way the model was trained and (b) with the token really
   absent — [MASK], or a random token, in its place.
3. Mismatch: 2-layer encoders pretrained with 80/10/10 and with 100% [MASK]: accuracy of
   predicting the visible token at every unmasked position of clean dev sentences, at [MASK]
   and at randomly replaced positions; then SST-2 dev accuracy after fine-tuning (and of a
   logistic-regression probe on the frozen, mean-pooled token states), against an encoder
   from random initialisation.

Reproduce: ``qkv ask 20 --size full``.
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ModelConfig
from ..data import ClassificationCollator, MLMCollator, load_sst2, pad_batch
from ..models import build_model
from ..presets import sst2_encoder
from ..tasks.common import tokenizer_for
from ..train import TrainConfig
from . import base, plots, shared
from .table import Table, fmt

NUMBER = 20
TITLE = "Why does BERT use [MASK] tokens rather than attention masking?"
KEYWORD = "BERT mask"
CLAIMS = [
    ("Masking a token's attention column hides it in a 1-layer encoder; with 2 layers it leaks back "
     "through the neighbours."),
    ("An MLM trained with attention masking instead of [MASK] cheats: its loss collapses, and it fails "
     "when the token is really absent."),
    "100% [MASK] leaves a pretrain/fine-tune mismatch (visible tokens are never predicted) that 80/10/10 removes.",
    "The mismatch costs downstream accuracy: 80/10/10 fine-tunes better than 100% [MASK].",
]
ANSWER = """\
MLM must predict token i from a context that does not contain it. Masking attention removes one
path only: token i enters the network as the input at position i, and the residual stream
carries it from there to position i's output whatever the attention mask says, so a plain
encoder with key i masked for every query leaks already at one layer. A separate, content-free
query stream for position i (XLNet's two streams) closes that path, and then one layer is
exactly leak-free, but two are not: content position j attends to i in layer 1, and i's query
reads j in layer 2. The leak-free cure is to take the token out of the input, which is what a
[MASK] placeholder does; no attention trick is needed then, at any depth. Always writing [MASK]
has its own cost: the loss never asks for the identity of a visible token, so a 100%-[MASK] model
learns nothing about the positions that fine-tuning will feed it, while 80/10/10 keeps 10% of the
targets visible and 10% random. The measurements make this observed: exact hidden-state changes
for each scheme and depth, the dev MLM loss of each scheme as trained and with the token truly
absent, and the visible-token accuracy and SST-2 accuracy of 80/10/10 against 100% [MASK]."""
FULL_SEEDS = 3
SMOKE_SEEDS = 2
MIN_SEEDS = 3
N_SD = 2.0
LEAK_TOLERANCE = 1e-6  # largest hidden-state change that still counts as "none"
MIN_GAP = 0.5  # nats per token: smaller MLM loss differences count neither as cheating nor as harm
MIN_ACCURACY_GAP = 0.10  # visible-token accuracy: a smaller difference is no mismatch
MIN_DOWNSTREAM = 0.01  # SST-2 dev accuracy: one point
SIZES = {
    "smoke": {"d_model": 32, "steps": 5, "finetune_steps": 3, "batch": 16, "vocab": 300, "train_phrases": 1000,
              "dev_sentences": 48, "probe_phrases": 200},
    "full": {"d_model": 64, "steps": 300, "finetune_steps": 200, "batch": 48, "vocab": 2000, "train_phrases": None,
             "dev_sentences": None, "probe_phrases": 8000},
}
MAX_TOKENS = 48  # longer sentences are cut: 48 WordPiece tokens with [CLS] and [SEP]
MIN_TOKENS = 8  # MLM phrases shorter than this leave too little context to predict from
MAX_MLM_TOKENS = 32  # and longer ones make every randomly drawn batch pad to MAX_TOKENS
LR, FINETUNE_LR = 2e-3, 1e-3
# run name → (how the selected tokens are hidden, layers, [MASK] share, random share)
RUNS = {
    "query-1": ("query", 1, 1.0, 0.0), "query-2": ("query", 2, 1.0, 0.0),
    "column-1": ("column", 1, 1.0, 0.0), "column-2": ("column", 2, 1.0, 0.0),
    "mask-1": ("mask", 1, 1.0, 0.0), "mask-2": ("mask", 2, 1.0, 0.0),
    "bert-2": ("mask", 2, 0.8, 0.1),
}
INPUTS = ("own", "absent_mask", "absent_random")  # the dev inputs each run is scored on


def interleave(content: Tensor, query: Tensor) -> Tensor:
    """(B, T) and (B, T) → (B, 2T) as c0 q0 c1 q1 …: each query slot sits next to its content."""
    return torch.stack([content, query], dim=2).flatten(1)


def query_stream_mask(token_mask: Tensor, selected: Tensor) -> Tensor:
    """The two-stream attention mask over an interleaved sequence, bool ``(B, 1, 2T, 2T)``.

    Content slots may see every real content slot; query slots may see the real content slots
    that are not selected, and themselves. No query slot sees a selected token's content.
    """
    B, T = token_mask.shape
    no = torch.zeros_like(token_mask)
    is_content = interleave(torch.ones_like(token_mask), no)  # (B, 2T)
    for_content = interleave(token_mask, no)  # (B, 2T) keys a content slot may see
    for_query = interleave(token_mask & ~selected, no)  # (B, 2T) keys a query slot may see
    own = torch.eye(2 * T, dtype=torch.bool)  # (2T, 2T)
    mask = torch.where(is_content[:, :, None], for_content[:, None, :], for_query[:, None, :] | own)  # (B, 2T, 2T)
    return mask[:, None]


class HiddenTokenMLM(nn.Module):
    """An MLM encoder scored only at the selected positions, hiding them by ``scheme``.

    A batch holds ``input_ids``, ``mask`` and ``selected`` (B, T) and ``labels`` (n,), the
    original ids at the n selected positions. Computing the 2k-word output layer at those
    positions only, rather than all, keeps the output layer from dominating a step.
    """

    def __init__(self, model: nn.Module, scheme: str, mask_id: int) -> None:
        super().__init__()
        self.model, self.scheme, self.mask_id = model, scheme, mask_id

    def hidden_states(self, batch: dict[str, Tensor]) -> Tensor:
        """Final hidden states ``(B, T, d)``; for ``query`` those of the query slots."""
        ids, mask, selected = batch["input_ids"], batch["mask"], batch["selected"]
        stack = self.model.encoder
        if self.scheme == "mask":
            return stack(ids, mask)
        if self.scheme == "column":
            stack.mask_hook = lambda m, T, S: m & ~selected[:, None, None, :]  # (B, 1, 1, S)
            inputs = (ids, mask)
        else:
            stack.mask_hook = lambda m, T, S: m & query_stream_mask(mask, selected)  # (B, 1, 2T, 2T)
            inputs = (interleave(ids, torch.full_like(ids, self.mask_id)), interleave(mask, mask))
        try:
            h = stack(*inputs)  # (B, T or 2T, d)
        finally:
            stack.mask_hook = None
        return h if self.scheme == "column" else h[:, 1::2]  # (B, T, d)

    def forward_batch(self, batch: dict[str, Tensor]) -> Tensor:
        h = self.hidden_states(batch)[batch["selected"]]  # (n, d)
        return self.model.head(h, None)  # (n, V)


# -- data ---------------------------------------------------------------------------------------


def sst2_data(s: dict, tmp: Path) -> dict[str, Any]:
    """WordPiece vocabulary from the training phrases, and the encoded train and dev sets."""
    train, dev = load_sst2("train"), load_sst2("dev")
    if s["train_phrases"]:
        train = random.Random(0).sample(train, s["train_phrases"])
    dev = dev[: s["dev_sentences"]] if s["dev_sentences"] else dev
    tok = tokenizer_for(tmp, "wordpiece", s["vocab"], lambda: [x for x, _ in train], lowercase=True,
                        score="frequency")
    encode = lambda rows: [(i[:MAX_TOKENS], y) for i, (_, y) in zip(tok.encode_batch([x for x, _ in rows]), rows)]  # noqa: E731
    train_ids, dev_ids = encode(train), encode(dev)
    return {"tok": tok, "train": train_ids, "mlm": [i for i, _ in train_ids if MIN_TOKENS <= len(i) <= MAX_MLM_TOKENS],
            "dev": dev_ids, "special": [tok.hf.token_to_id(t) for t in tok.special_tokens]}


def collator(data: dict, seed: int, mask_prob: float = 1.0, random_prob: float = 0.0) -> MLMCollator:
    """BERT's collator; its random draws do not depend on the shares, so every run of a seed
    selects the same positions."""
    tok = data["tok"]
    return MLMCollator(pad_id=tok.pad_id, mask_id=tok.mask_id, vocab_size=tok.vocab_size,
                       special_ids=data["special"], mask_prob=mask_prob, random_prob=random_prob, seed=seed)


def mlm_batch(ids: list[list[int]], corrupt: MLMCollator, keep_tokens: bool, pad_id: int) -> dict[str, Tensor]:
    clean, mask = pad_batch(ids, pad_id)  # (B, T)
    corrupted = corrupt.corrupt(clean, mask)
    selected = corrupted["labels"] != -100  # (B, T)
    return {"input_ids": clean if keep_tokens else corrupted["input_ids"], "mask": mask, "selected": selected,
            "labels": clean[selected]}


def dev_batches(data: dict, seed: int) -> dict[str, list[dict]]:
    """The dev sentences, 64 a batch, with one fixed selection: as each scheme sees them, and
    with the selected tokens replaced by [MASK] or by random tokens."""
    ids = [i for i, _ in data["dev"]]
    chunks = [ids[k:k + 64] for k in range(0, len(ids), 64)]
    pad = data["tok"].pad_id
    make = lambda keep, prob_mask, prob_random: [  # noqa: E731
        mlm_batch(c, collator(data, 5000 + seed + k, prob_mask, prob_random), keep, pad) for k, c in enumerate(chunks)]
    return {"clean": make(True, 1.0, 0.0), "absent_mask": make(False, 1.0, 0.0), "absent_random": make(False, 0.0, 1.0)}


# -- training -----------------------------------------------------------------------------------


def encoder_config(s: dict, data: dict, layers: int, **changes: Any) -> ModelConfig:
    d = s["d_model"]
    settings = dict(head="mlm", vocab_size=data["tok"].vocab_size, pad_id=data["tok"].pad_id, d_model=d,
                    n_layers=layers, n_heads=2, d_ff=4 * d, max_len=2 * MAX_TOKENS, dropout_embed=0.0,
                    dropout_residual=0.0, dropout_attention=0.0)
    return sst2_encoder(**{**settings, **changes})


def fit(model: nn.Module, batches: list[dict], lr: float, seed: int) -> list[float]:
    """qkv's Trainer over fixed batches (linear decay, 10% warm-up); returns the step losses."""
    steps = len(batches)
    tcfg = TrainConfig(lr=lr, schedule="linear", warmup_steps=max(1, steps // 10), max_steps=steps,
                       label_smoothing=0.0, precision="fp32", device="cpu", seed=seed, log_every=steps + 1,
                       weight_decay=0.01)
    return shared.train_steps(model, tcfg, batches)


def pretrain(run: str, s: dict, data: dict, seed: int) -> tuple[HiddenTokenMLM, float]:
    """One MLM run; returns the model and its training loss over the last 10% of steps."""
    scheme, layers, mask_prob, random_prob = RUNS[run]
    torch.manual_seed(seed)  # the same initial weights for every run of this depth and seed
    wrapper = HiddenTokenMLM(build_model(encoder_config(s, data, layers)), scheme, data["tok"].mask_id)
    order = torch.Generator().manual_seed(seed)
    corrupt = collator(data, 1000 + seed, mask_prob, random_prob)
    batches = [mlm_batch([data["mlm"][i] for i in torch.randint(len(data["mlm"]), (s["batch"],), generator=order)],
                         corrupt, scheme != "mask", data["tok"].pad_id) for _ in range(s["steps"])]
    losses = fit(wrapper, batches, LR, seed)
    tail = losses[-max(1, len(losses) // 10):]
    return wrapper.eval(), sum(tail) / len(tail)


@torch.no_grad()
def mlm_score(wrapper: HiddenTokenMLM, batches: list[dict]) -> dict[str, float]:
    """Loss (nats) and accuracy of the predictions at the selected positions."""
    loss, correct, n = 0.0, 0, 0
    for b in batches:
        logits = wrapper.forward_batch(b)  # (n, V)
        loss += float(F.cross_entropy(logits, b["labels"], reduction="sum"))
        correct += int((logits.argmax(-1) == b["labels"]).sum())
        n += len(b["labels"])
    return {"loss": loss / n, "accuracy": correct / n}


@torch.no_grad()
def leak(wrapper: HiddenTokenMLM, clean: list[dict], swapped: list[dict]) -> dict[str, float]:
    """Largest |Δ hidden state| when the selected tokens change, at them and everywhere else."""
    at_hidden, elsewhere = 0.0, 0.0
    for a, b in zip(clean, swapped):
        b = {**a, "input_ids": b["input_ids"]}  # the same hiding, other tokens at the selected positions
        diff = (wrapper.hidden_states(a) - wrapper.hidden_states(b)).abs().amax(-1)  # (B, T)
        at_hidden = max(at_hidden, float(diff[a["selected"]].max()))
        elsewhere = max(elsewhere, float(diff[a["mask"] & ~a["selected"]].max()))
    return {"leak": at_hidden, "leak_elsewhere": elsewhere}


def score_run(run: str, wrapper: HiddenTokenMLM, train_loss: float, dev: dict, seed: int) -> dict[str, Any]:
    own = dev["clean"] if wrapper.scheme != "mask" else dev["absent_mask"]
    row: dict[str, Any] = {"run": run, "seed": seed, "train_loss": train_loss}
    for name, batches in (("own", own), ("absent_mask", dev["absent_mask"]), ("absent_random", dev["absent_random"])):
        for key, value in mlm_score(wrapper, batches).items():
            row[f"{name}_{key}"] = value
    if wrapper.scheme != "mask":  # a [MASK] model's hidden tokens are not in its input at all
        row.update(leak(wrapper, dev["clean"], dev["absent_random"]))
    return row


# -- the mismatch: visible tokens, fine-tuning, a frozen probe -----------------------------------


def visible_batches(data: dict) -> list[dict]:
    """Clean dev sentences with every real, non-special token a target: the input fine-tuning sees."""
    out = []
    for k in range(0, len(data["dev"]), 64):
        clean, mask = pad_batch([i for i, _ in data["dev"][k:k + 64]], data["tok"].pad_id)  # (B, T)
        selected = mask & ~torch.isin(clean, torch.tensor(data["special"]))
        out.append({"input_ids": clean, "mask": mask, "selected": selected, "labels": clean[selected]})
    return out


def finetune(body: nn.Module | None, s: dict, data: dict, seed: int) -> float:
    """SST-2 dev accuracy after fine-tuning a classifier that starts from ``body``'s encoder."""
    torch.manual_seed(seed)
    model = build_model(encoder_config(s, data, 2, head="classify", pooling="mean", n_classes=2))
    if body is not None:
        model.load_state_dict({k: v for k, v in body.state_dict().items() if k.startswith("encoder.")}, strict=False)
    order = torch.Generator().manual_seed(2000 + seed)
    collate = ClassificationCollator(data["tok"].pad_id)
    batches = [collate([data["train"][i] for i in torch.randint(len(data["train"]), (s["batch"],), generator=order)])
               for _ in range(s["finetune_steps"])]
    fit(model, batches, FINETUNE_LR, seed)
    model.eval()
    with torch.no_grad():
        dev = [collate(data["dev"][k:k + 64]) for k in range(0, len(data["dev"]), 64)]
        correct = sum(int((model(b["input_ids"], b["mask"]).argmax(-1) == b["labels"]).sum()) for b in dev)
    return correct / len(data["dev"])


@torch.no_grad()
def pooled(stack: nn.Module, rows: list[tuple[list[int], int]], pad_id: int) -> tuple[Tensor, Tensor]:
    """Mean of the final hidden states over real tokens ``(N, d)``, and the labels ``(N,)``."""
    feats = []
    for k in range(0, len(rows), 256):
        ids, mask = pad_batch([i for i, _ in rows[k:k + 256]], pad_id)  # (B, T)
        w = mask[..., None].float()  # (B, T, 1)
        feats.append((stack(ids, mask) * w).sum(1) / w.sum(1))  # (B, d)
    return torch.cat(feats), torch.tensor([y for _, y in rows])


def logistic_probe(x: Tensor, y: Tensor, x_test: Tensor, y_test: Tensor, l2: float = 1e-3) -> float:
    """Accuracy on (x_test, y_test) of L2-regularised logistic regression fitted to (x, y), (N, d)."""
    mu, sd = x.mean(0), x.std(0) + 1e-6
    x, x_test = (x - mu) / sd, (x_test - mu) / sd
    w = torch.zeros(x.shape[1] + 1, 2, requires_grad=True)
    design = lambda z: torch.cat([z, torch.ones(len(z), 1)], 1)  # noqa: E731
    opt = torch.optim.LBFGS([w], max_iter=100, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(design(x) @ w, y) + l2 * w[:-1].pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return float(((design(x_test) @ w).argmax(-1) == y_test).float().mean())


def probe(stack: nn.Module, s: dict, data: dict, seed: int) -> float:
    rows = random.Random(seed).sample(data["train"], min(s["probe_phrases"], len(data["train"])))
    x, y = pooled(stack, rows, data["tok"].pad_id)
    x_dev, y_dev = pooled(stack, data["dev"], data["tok"].pad_id)
    return logistic_probe(x, y, x_dev, y_dev)


def mismatch(models: dict[str, HiddenTokenMLM], s: dict, data: dict, seed: int) -> list[dict[str, Any]]:
    """Visible-token accuracy, fine-tuned and probed SST-2 accuracy: 80/10/10, 100% [MASK], none."""
    torch.manual_seed(seed)
    scratch = build_model(encoder_config(s, data, 2)).eval()
    visible = visible_batches(data)
    rows = []
    for name, model in (("bert-2", models["bert-2"].model), ("mask-2", models["mask-2"].model), ("scratch", scratch)):
        body = None if name == "scratch" else model
        row = {"init": name, "seed": seed, "finetune_accuracy": finetune(body, s, data, seed),
               "probe_accuracy": probe(model.encoder, s, data, seed)}
        if name != "scratch":
            row["visible_accuracy"] = mlm_score(HiddenTokenMLM(model, "mask", 0), visible)["accuracy"]
        rows.append(row)
    return rows


def run(size: str, seeds: int, out: Path) -> dict[str, Any]:
    started = time.perf_counter()
    s = SIZES[size]
    with base.one_thread(), tempfile.TemporaryDirectory() as tmp:
        data = sst2_data(s, Path(tmp))
        runs, downstream = [], []
        for seed in range(seeds):
            dev = dev_batches(data, seed)
            models = {}
            for name in RUNS:
                models[name], train_loss = pretrain(name, s, data, seed)
                runs.append(score_run(name, models[name], train_loss, dev, seed))
            downstream += mismatch(models, s, data, seed)
    results = {"runs": runs, "downstream": downstream,
               "data": {"mlm_phrases": len(data["mlm"]), "train_phrases": len(data["train"]), "dev": len(data["dev"]),
                        "vocab": data["tok"].vocab_size}}
    config = {**s, "max_tokens": MAX_TOKENS, "min_tokens": MIN_TOKENS, "max_mlm_tokens": MAX_MLM_TOKENS, "lr": LR,
              "finetune_lr": FINETUNE_LR,
              "select_prob": 0.15, "runs": {k: list(v) for k, v in RUNS.items()}, "n_heads": 2,
              "model": "sst2_encoder preset (post-norm, rope, GELU, embedding norm), no dropout", "precision": "fp32"}
    names = [plot(results, out)]
    return base.finish(verdict, base.record(NUMBER, size, seeds, out, config, results, names, started), out)


# -- reading the numbers ------------------------------------------------------------------------


def column(rows: list[dict], key: str, **where: Any) -> list[float]:
    """``key`` of the rows matching ``where``, in seed order (so two columns pair by seed)."""
    picked = [r for r in rows if key in r and all(r.get(k) == v for k, v in where.items())]
    return [r[key] for r in sorted(picked, key=lambda r: r["seed"])]


def plot(results: dict[str, Any], out: Path) -> str:
    fig, (ax_leak, ax_loss, ax_acc) = plots.figure(3, width=4.6)
    runs = results["runs"]
    leaky = ["query-1", "query-2", "column-1", "column-2"]
    for i, name in enumerate(leaky):  # exact zeros drawn at 1e-12 on the log axis
        plots.seed_points(ax_leak, i, [max(v, 1e-12) for v in column(runs, "leak", run=name)], "C3", width=0.2)
    ax_leak.set(yscale="log", xticks=range(len(leaky)), ylabel="max |Δ hidden| at hidden positions",
                title="swapping the hidden tokens (1e-12 = exactly 0)")
    ax_leak.set_xticklabels(leaky, fontsize=8)
    names = list(RUNS)
    for i, name in enumerate(names):
        for key, color, dx in (("own_loss", "C0", -0.2), ("absent_mask_loss", "C1", 0.2)):
            plots.seed_points(ax_loss, i + dx, column(runs, key, run=name), color, width=0.15)
    ax_loss.scatter([], [], color="C0", label="as trained")
    ax_loss.scatter([], [], color="C1", label="token absent ([MASK])")
    ax_loss.set(xticks=range(len(names)), ylabel="dev MLM loss (nats/token)", title="hidden-token loss")
    ax_loss.set_xticklabels(names, rotation=30, fontsize=8)
    ax_loss.legend(fontsize=8)
    down = results["downstream"]
    keys = ("visible_accuracy", "finetune_accuracy", "probe_accuracy")
    for j, key in enumerate(keys):
        for init, color, dx in (("bert-2", "C2", -0.25), ("mask-2", "C3", 0.0), ("scratch", "C7", 0.25)):
            plots.seed_points(ax_acc, j + dx, [100 * v for v in column(down, key, init=init)], color, width=0.1)
    for init, color in (("80/10/10", "C2"), ("100% [MASK]", "C3"), ("random init", "C7")):
        ax_acc.scatter([], [], color=color, label=init)
    ax_acc.set(xticks=range(3), ylabel="accuracy (%)", title="2 layers: 80/10/10 vs 100% [MASK]")
    ax_acc.set_xticklabels(["visible token\n(clean dev)", "SST-2 dev\nfine-tuned", "SST-2 dev\nfrozen probe"], fontsize=8)
    ax_acc.legend(fontsize=8)
    return plots.save(fig, out, "q20_bert_mask.png")


def effects(metrics: dict[str, Any]) -> dict[str, dict]:
    runs, down = metrics["results"]["runs"], metrics["results"]["downstream"]
    gap: Callable[..., dict] = lambda a, b, min_effect: base.paired_effect(a, b, N_SD, min_effect)  # noqa: E731
    return {
        "cheats": gap(column(runs, "own_loss", run="mask-2"), column(runs, "own_loss", run="query-2"), MIN_GAP),
        "fails_absent": gap(column(runs, "absent_mask_loss", run="query-2"),
                            column(runs, "absent_mask_loss", run="mask-2"), MIN_GAP),
        "column_cheats_at_1": gap(column(runs, "own_loss", run="mask-1"), column(runs, "own_loss", run="column-1"),
                                  MIN_GAP),
        "mismatch": gap(column(down, "visible_accuracy", init="bert-2"),
                        column(down, "visible_accuracy", init="mask-2"), MIN_ACCURACY_GAP),
        "finetune": gap(column(down, "finetune_accuracy", init="bert-2"),
                        column(down, "finetune_accuracy", init="mask-2"), MIN_DOWNSTREAM),
        "probe": gap(column(down, "probe_accuracy", init="bert-2"), column(down, "probe_accuracy", init="mask-2"),
                     MIN_DOWNSTREAM),
    }


def leaks(metrics: dict[str, Any]) -> dict[str, float]:
    """The exact checks: the worst case where no leak is expected, the least where one is."""
    runs = metrics["results"]["runs"]
    return {"query_1": max(column(runs, "leak", run="query-1")), "query_2": min(column(runs, "leak", run="query-2")),
            "column_1": min(column(runs, "leak", run="column-1")),
            "column_elsewhere": max(column(runs, "leak_elsewhere", run="column-1")
                                    + column(runs, "leak_elsewhere", run="column-2"))}


def verdict(metrics: dict[str, Any]) -> tuple[str, str]:
    undecided = base.undecidable(metrics, MIN_SEEDS)
    if undecided:
        return undecided
    lk, e = leaks(metrics), effects(metrics)
    pm = lambda k, scale=1.0: f"{scale * e[k]['mean']:+.2f} ± {scale * e[k]['sd']:.2f}"  # noqa: E731
    numbers = (f"hidden-state change at hidden tokens: query stream {lk['query_1']:.1e} at 1 layer, ≥ {lk['query_2']:.1e} "
               f"at 2; column mask ≥ {lk['column_1']:.1e} already at 1 layer (the residual), its 1-layer dev loss "
               f"{pm('column_cheats_at_1')} nats below [MASK]'s; 2-layer dev MLM loss "
               f"[MASK] − query stream {pm('cheats')} nats as trained, query stream − [MASK] {pm('fails_absent')} with "
               f"the token absent; visible-token accuracy 80/10/10 − 100% {pm('mismatch', 100)} points, SST-2 "
               f"fine-tuned {pm('finetune', 100)}, frozen probe {pm('probe', 100)} points")
    if lk["query_1"] > LEAK_TOLERANCE or lk["column_elsewhere"] > LEAK_TOLERANCE:
        return "refuted", f"the attention mask does not hide the token: {numbers}"
    parts = ("cheats", "fails_absent", "mismatch", "finetune")
    held = [k for k in parts if e[k]["significant"]] + (["leaks_at_2"] if lk["query_2"] > LEAK_TOLERANCE else [])
    one_layer_hides = lk["column_1"] <= LEAK_TOLERANCE
    if len(held) == len(parts) + 1 and one_layer_hides:
        return "confirmed", f"every effect beyond {N_SD:g} sd of seed noise and its minimum: {numbers}"
    if not {"cheats", "mismatch"} & set(held):
        return "refuted", f"neither cheating nor a mismatch beyond seed noise: {numbers}"
    failed = [k for k in (*parts, "leaks_at_2") if k not in held] + ([] if one_layer_hides else ["one_layer_hides"])
    return "depends", f"holds: {', '.join(held)}; fails: {', '.join(failed)}: {numbers}"


def tables(metrics: dict[str, Any]) -> list[Table]:
    r = metrics["results"]
    stat = lambda xs, scale=1.0: (f"{scale * base.mean(xs):.3g} ± {scale * base.std(xs):.2g}" if xs else "—")  # noqa: E731
    leak_rows = [[name, fmt(max(column(r["runs"], "leak", run=name))), fmt(min(column(r["runs"], "leak", run=name))),
                  fmt(max(column(r["runs"], "leak_elsewhere", run=name)))]
                 for name in RUNS if RUNS[name][0] != "mask"]
    first = (["run", "max over seeds |Δ h| at hidden", "min over seeds", "max |Δ h| elsewhere"], leak_rows)
    mlm_rows = [[name, stat(column(r["runs"], "train_loss", run=name))]
                + [stat(column(r["runs"], f"{i}_{k}", run=name), 100 if k == "accuracy" else 1.0)
                   for i in INPUTS for k in ("loss", "accuracy")] for name in RUNS]
    second = (["run", "train loss", "dev loss as trained", "acc % as trained", "loss, [MASK] in place", "acc %, [MASK]",
               "loss, random in place", "acc %, random"], mlm_rows)
    down_rows = [[init, stat(column(r["downstream"], "visible_accuracy", init=init), 100) if init != "scratch" else "—",
                  stat(column(r["downstream"], "finetune_accuracy", init=init), 100),
                  stat(column(r["downstream"], "probe_accuracy", init=init), 100)]
                 for init in ("bert-2", "mask-2", "scratch")]
    third = (["2-layer encoder from", "visible-token acc %", "SST-2 dev acc % fine-tuned", "SST-2 dev acc % probe"],
             down_rows)
    return [first, second, third]
