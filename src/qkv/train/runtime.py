"""The parts of a training run that depend on the machine rather than the maths: which device,
which precision, gradient checkpointing, and turning Ctrl-C into "save, then stop".
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from pathlib import Path

import torch
from torch import nn

from ..errors import ConfigError
from ..nn.stack import Stack


def device_type(name: str) -> str:
    """``"auto"`` → ``"cuda"`` when a GPU is visible, else ``"cpu"``; checks an explicit ``"cuda"``."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda' but torch.cuda.is_available() is False; use device='auto' or 'cpu'")
    return name


def autocast(precision: str, device: torch.device) -> AbstractContextManager:
    """Mixed precision for the forward pass (Micikevicius et al., 2018).

    The weights and the optimizer stay in float32; matrix products run in bf16/fp16. bf16 has
    float32's exponent range, so it needs no loss scaling; fp16 does (see :func:`grad_scaler`).
    """
    if precision == "fp32":
        return nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices natively (AVX-512-BF16 or AMX).

    Elsewhere oneDNN emulates bf16 through fp32 and autocast makes training several times
    slower, so ``precision="auto"`` must not pick it there. Linux reports the flags in
    /proc/cpuinfo; on other systems we cannot tell and answer False (fp32 is always safe).
    """
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


def resolve_precision(precision: str, device: torch.device) -> str:
    """``"auto"`` → ``"bf16"`` where the hardware runs it fast (CUDA with bf16, or a CPU with
    AVX-512-BF16/AMX), else ``"fp32"``; any explicit choice is checked and returned."""
    check_precision(precision, device)
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if device.type == "cpu" and cpu_has_fast_bf16() else "fp32"


def check_precision(precision: str, device: torch.device) -> None:
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError(
            f"precision='fp16' is not supported on device {device.type!r}: fp16 needs a GPU and "
            f"loss scaling; use precision='bf16' (or 'fp32') on the CPU"
        )


def grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler:
    """Loss scaling for fp16: multiply the loss so small gradients do not flush to zero, skip
    the step when the scaled gradients overflow. Disabled (a pass-through) otherwise."""
    enabled = precision == "fp16" and device.type == "cuda"
    return torch.amp.GradScaler("cuda" if enabled else "cpu", enabled=enabled)


def set_gradient_checkpointing(model: nn.Module, on: bool) -> None:
    """Recompute each layer's activations in backward instead of storing them (Chen et al., 2016):
    memory O(layers) → O(1) activations per layer, for about one extra forward pass."""
    stacks = [m for m in model.modules() if isinstance(m, Stack)]
    if on and not stacks:
        raise ConfigError(
            f"gradient_checkpointing=True but {type(model).__name__} has no qkv.nn.Stack to "
            f"checkpoint (the LSTM baselines have none); set gradient_checkpointing=False"
        )
    for stack in stacks:
        stack.gradient_checkpointing = on


@contextmanager
def stop_requests() -> Iterator[Callable[[], bool]]:
    """Yield a function telling whether Ctrl-C (SIGINT) or SIGTERM arrived.

    The first signal only sets the flag, so the trainer can finish the current step, save a
    checkpoint and return; a second Ctrl-C raises ``KeyboardInterrupt`` at once. Outside the
    main thread signal handlers cannot be installed, and the flag stays False.
    """
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    received: list[int] = []

    def handler(signum: int, frame: object) -> None:
        if received and signum == signal.SIGINT:
            raise KeyboardInterrupt
        received.append(signum)
        print(f"\n{signal.Signals(signum).name} received: saving a checkpoint after this step "
              f"(Ctrl-C again to abort without saving)", file=sys.stderr, flush=True)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: bool(received)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


__all__ = ["device_type", "autocast", "cpu_has_fast_bf16", "resolve_precision", "check_precision", "grad_scaler", "set_gradient_checkpointing",
           "stop_requests"]
