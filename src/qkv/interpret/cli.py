"""`qkv explain CHECKPOINT "text" --out explain.html`: the page of ``qkv.interpret.explain``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError


def cmd_explain(args: argparse.Namespace) -> int:
    from ..tasks.run import open_checkpoint
    from .explain import explain_data, render

    if not args.text.strip():
        raise InputError("nothing to explain: give the text as the second argument")
    out = Path(args.out)
    if out.is_dir():
        raise InputError(f"--out {out} is a folder; name the HTML file to write, e.g. {out / 'explain.html'}")
    model, tok, folder = open_checkpoint(args.checkpoint)
    page = render(explain_data(model, tok, args.text))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    print(f"wrote {out} ({len(page) / 1e6:.1f} MB): open it in a browser; it needs no network")
    return 0


def add_subparser(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("explain", help="an HTML page of a model's attention (and attributions) on one text",
                       description="Write one self-contained HTML page: the model's output, every attention "
                                   "layer and head (hover a token), cross-attention alignment for translators, "
                                   "Integrated Gradients for classifiers.")
    e.add_argument("checkpoint", help="a checkpoint folder, or a run folder (then its final/)")
    e.add_argument("text", help="the sentence or prompt to look at")
    e.add_argument("--out", default="explain.html", help="the HTML file to write (default explain.html)")
    e.set_defaults(fn=cmd_explain)
