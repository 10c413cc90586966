"""Schedule shapes, checked through a real optimizer + LambdaLR (the lr each update uses)."""

from __future__ import annotations

import math

import pytest
import torch

from qkv.train import TrainConfig
from qkv.train.schedules import build_schedule, noam, noam_peak_lr


def lrs_of_updates(config: TrainConfig, n: int, total: int | None = None) -> list[float]:
    """The learning rate used by updates 1..n."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=config.lr)
    sched = build_schedule(opt, config, total)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_noam_peaks_at_warmup_with_the_configured_lr_then_decays_as_inverse_sqrt() -> None:
    warmup, lr = 10, 2e-3
    lrs = lrs_of_updates(TrainConfig(lr=lr, schedule="noam", warmup_steps=warmup), 4 * warmup)
    peak_update = max(range(len(lrs)), key=lrs.__getitem__) + 1
    assert peak_update == warmup and lrs[warmup - 1] == pytest.approx(lr)
    assert lrs[0] == pytest.approx(lr / warmup)  # linear warm-up from lr/warmup
    assert lrs[4 * warmup - 1] / lrs[warmup - 1] == pytest.approx(0.5)  # (4w / w)^-1/2


def test_noam_with_the_paper_peak_is_equation_3() -> None:
    d, warmup = 512, 4000
    for step in (1, 100, 4000, 10_000, 100_000):
        paper = d**-0.5 * min(step**-0.5, step * warmup**-1.5)
        assert noam(step, warmup=warmup) * noam_peak_lr(d, warmup) == pytest.approx(paper)


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_decaying_schedules_warm_up_then_reach_the_floor_at_the_end(name: str) -> None:
    lr, warmup, total, floor = 1e-3, 4, 24, 0.1
    config = TrainConfig(lr=lr, schedule=name, warmup_steps=warmup, min_lr_ratio=floor, max_steps=total)
    lrs = lrs_of_updates(config, total, total)
    assert lrs[:warmup] == pytest.approx([lr * s / warmup for s in range(1, warmup + 1)])
    assert lrs[-1] == pytest.approx(lr * floor)
    assert all(a >= b for a, b in zip(lrs[warmup - 1 :], lrs[warmup:]))  # never rises after warm-up
    middle = lrs[warmup - 1 + (total - warmup) // 2]
    if name == "cosine":
        assert middle == pytest.approx(lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi / 2))))
    else:
        assert middle == pytest.approx(lr * (floor + (1 - floor) * 0.5))


def test_constant_schedule_and_missing_length() -> None:
    assert lrs_of_updates(TrainConfig(lr=0.5, schedule="constant", warmup_steps=0), 5) == [0.5] * 5
    with pytest.raises(ValueError, match="max_steps"):
        lrs_of_updates(TrainConfig(schedule="cosine", max_steps=None, max_epochs=2), 1, None)
