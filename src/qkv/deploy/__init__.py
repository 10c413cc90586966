"""Shipping a trained model: reduced precision, export, and an HTTP service.

Each tool is its own module, imported by name so that one never pulls in another's
dependencies (``from qkv.deploy.serve import create_app`` does not load ONNX):

    precision.py    bf16 / int8 inference and int8 checkpoints
    serve.py        ``qkv serve``: FastAPI app over a micro-batching worker (batcher.py)
"""
