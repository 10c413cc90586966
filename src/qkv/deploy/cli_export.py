"""`qkv export CHECKPOINT --to onnx|ctranslate2|int8 --out DIR`: a checkpoint in a deployable form.

``--to onnx`` writes onnxruntime graphs (``qkv.deploy.onnx_export``; ``--int8`` adds
onnxruntime's dynamic int8 quantisation of them) with ``qkv_onnx.json`` and the tokenizer;
``--to ctranslate2`` writes a CTranslate2 model directory (``qkv.deploy.ct2_export``; ``--int8``
stores its weights as int8) with ``qkv_ct2.json`` and the tokenizer;
``--to int8`` writes a qkv checkpoint with int8 linear layers (``qkv.deploy.precision``) that
``qkv translate`` / ``generate`` / ``serve`` run as it is.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

TARGETS = ("onnx", "ctranslate2", "int8")


def cmd_export(args: argparse.Namespace) -> int:
    from ..checkpoint import load
    from ..tasks.run import checkpoint_folder

    folder = checkpoint_folder(args.checkpoint)
    if args.to == "int8":
        from .precision import save_int8

        print(f"wrote {save_int8(load(folder), folder, Path(args.out))}")
        return 0
    if args.to == "ctranslate2":
        out = _export_ct2(folder, args.out, args.int8)
    else:
        out = _export_onnx(folder, args.out, args.int8)
    copy_tokenizer(folder, out)
    print(f"wrote {out}")
    return 0


def _export_onnx(folder: Path, out_dir: str, int8: bool) -> Path:
    from ..checkpoint import load
    from .onnx_export import check_exportable, check_out_dir, export_onnx

    out = check_out_dir(out_dir)
    model = load(folder)
    check_exportable(model.config)
    return export_onnx(model, out, int8=int8).parent


def _export_ct2(folder: Path, out_dir: str, int8: bool) -> Path:
    from ..checkpoint import load
    from ..tasks.common import find_tokenizer
    from .ct2_export import export_ctranslate2

    return export_ctranslate2(load(folder), find_tokenizer(folder), out_dir, int8=int8)


def copy_tokenizer(folder: Path, out: Path) -> None:
    """Copy ``tokenizer*.json`` from the checkpoint, or else its run folder, next to the export."""
    for where in (folder, folder.parent):
        found = sorted(where.glob("tokenizer*.json"))
        for tok in found:
            shutil.copy2(tok, Path(out) / tok.name)
        if found:
            break


def add_subparser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export", help="export a checkpoint: ONNX graphs for onnxruntime, a CTranslate2 model, or int8 weights")
    p.add_argument("checkpoint", help="a checkpoint folder, or a run folder (then its final/)")
    p.add_argument("--to", choices=TARGETS, default="onnx",
                   help="onnx: onnxruntime graphs; ctranslate2: a CTranslate2 model directory; "
                        "int8: a qkv checkpoint with int8 linear layers")
    p.add_argument("--out", required=True, help="folder for the exported model (its parent must exist)")
    p.add_argument("--int8", action="store_true", help="with --to onnx: also write onnxruntime's dynamic int8 graphs; "
                        "with --to ctranslate2: store the weights as int8")
    p.set_defaults(fn=cmd_export)


__all__ = ["add_subparser", "cmd_export"]
