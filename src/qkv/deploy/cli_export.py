"""`qkv export CHECKPOINT --to onnx|int8 --out DIR`: a checkpoint in a deployable form.

``--to onnx`` writes onnxruntime graphs (``qkv.deploy.onnx_export``; ``--int8`` adds
onnxruntime's dynamic int8 quantisation of them) with ``qkv_onnx.json`` and the tokenizer;
``--to int8`` writes a qkv checkpoint with int8 linear layers (``qkv.deploy.precision``) that
``qkv translate`` / ``generate`` / ``serve`` run as it is.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

TARGETS = ("onnx", "int8")


def cmd_export(args: argparse.Namespace) -> int:
    from ..checkpoint import load
    from ..tasks.run import checkpoint_folder

    folder = checkpoint_folder(args.checkpoint)
    if args.to == "int8":
        from .precision import save_int8

        print(f"wrote {save_int8(load(folder), folder, Path(args.out))}")
        return 0
    from .onnx_export import check_exportable, check_out_dir, export_onnx

    out = check_out_dir(args.out)
    model = load(folder)
    check_exportable(model.config)
    manifest = export_onnx(model, out, int8=args.int8)
    for where in (folder, folder.parent):  # the tokenizer sits in the checkpoint or its run folder
        found = sorted(where.glob("tokenizer*.json"))
        for tok in found:
            shutil.copy2(tok, Path(out) / tok.name)
        if found:
            break
    print(f"wrote {manifest.parent}")
    return 0


def add_subparser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("export", help="export a checkpoint: ONNX graphs for onnxruntime, or int8 weights")
    p.add_argument("checkpoint", help="a checkpoint folder, or a run folder (then its final/)")
    p.add_argument("--to", choices=TARGETS, default="onnx",
                   help="onnx: onnxruntime graphs; int8: a qkv checkpoint with int8 linear layers")
    p.add_argument("--out", required=True, help="folder for the exported model (its parent must exist)")
    p.add_argument("--int8", action="store_true", help="with --to onnx: also write onnxruntime's dynamic int8 graphs")
    p.set_defaults(fn=cmd_export)


__all__ = ["add_subparser", "cmd_export"]
