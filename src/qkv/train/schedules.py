r"""Learning-rate schedules as multipliers of the configured peak ``lr``.

Each schedule is a pure function of the *update number* ``step`` (1 for the first optimizer
update) returning a factor in [0, 1]; the learning rate of that update is ``lr · factor``.
:func:`build_schedule` turns one into a ``torch.optim.lr_scheduler.LambdaLR``, which calls its
function with the number of scheduler steps taken so far (0 before the first update), hence
the ``+ 1`` there.

    noam      /\___        linear warm-up, then decay as 1/sqrt(step)
    linear    /‾‾‾\_       linear warm-up, then a straight line down to min_lr_ratio at the end
    cosine    /‾‾‾‾\_      linear warm-up, then half a cosine down to min_lr_ratio at the end
    constant  /‾‾‾‾‾‾      linear warm-up (if any), then flat
"""

from __future__ import annotations

import functools
import math
from typing import Callable

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from .config import TrainConfig

Factor = Callable[[int], float]


def noam(step: int, *, warmup: int) -> float:
    """Vaswani et al. (2017) eq. 3, divided by its value at ``step = warmup``.

    The paper's rate is ``d^-0.5 · min(step^-0.5, step · warmup^-1.5)``: linear warm-up, then
    inverse-square-root decay. Its peak, reached at ``step = warmup``, is ``(d · warmup)^-0.5``,
    so dividing by that peak leaves ``min(sqrt(warmup / step), step / warmup)`` and the
    configured ``lr`` *is* the peak. (The paper's own peak for d=512, warmup=4000 is
    ``noam_peak_lr(512, 4000)`` ≈ 7.0e-4.)
    """
    step = max(step, 1)
    return min(step**-0.5, step * warmup**-1.5) / warmup**-0.5


def noam_peak_lr(d_model: int, warmup: int) -> float:
    """The peak of the paper's eq. 3: pass it as ``lr`` to reproduce Vaswani et al. exactly."""
    return (d_model * warmup) ** -0.5


def _warmup(step: int, warmup: int) -> float:
    return step / warmup if warmup > 0 else 1.0


def linear(step: int, *, warmup: int, total: int, floor: float = 0.0) -> float:
    """Linear warm-up to 1, then linear decay to ``floor`` at ``step = total`` (BERT, GPT-2)."""
    if step < warmup:
        return _warmup(step, warmup)
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1.0 - floor) * (1.0 - progress)


def cosine(step: int, *, warmup: int, total: int, floor: float = 0.0) -> float:
    """Linear warm-up, then half a cosine from 1 down to ``floor`` (Loshchilov & Hutter, 2017)."""
    if step < warmup:
        return _warmup(step, warmup)
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def constant(step: int, *, warmup: int = 0) -> float:
    """Linear warm-up (if any), then the configured ``lr`` unchanged."""
    return _warmup(step, warmup) if step < warmup else 1.0


def schedule_factor(config: TrainConfig, total_steps: int | None) -> Factor:
    """The factor function ``config.schedule`` names, with its arguments bound."""
    warmup = config.warmup_steps
    match config.schedule:
        case "noam":
            return functools.partial(noam, warmup=warmup)
        case "constant":
            return functools.partial(constant, warmup=warmup)
        case "linear" | "cosine":
            if total_steps is None:
                raise ValueError(
                    f"schedule={config.schedule!r} decays to the last step, so it needs the run's "
                    f"length: set max_steps, or give batches whose epochs have a len()"
                )
            fn = linear if config.schedule == "linear" else cosine
            return functools.partial(fn, warmup=warmup, total=total_steps, floor=config.min_lr_ratio)
    raise ValueError(f"schedule={config.schedule!r} is unknown")  # unreachable: config validates


def build_schedule(optimizer: Optimizer, config: TrainConfig, total_steps: int | None = None) -> LambdaLR:
    """A ``LambdaLR`` applying the schedule; call ``.step()`` once after each optimizer update."""
    factor = schedule_factor(config, total_steps)
    return LambdaLR(optimizer, lambda i: factor(i + 1))


__all__ = ["noam", "noam_peak_lr", "linear", "cosine", "constant", "schedule_factor", "build_schedule"]
