"""What every benchmark shares: interleaved timing, peak memory, FLOP counts and the matmul peak.

Timing: the machine is shared, so peers are timed *interleaved* — round after round, each peer
runs one timed window in turn (the order rotating every round) — and each reports the median
window. A slow patch of machine time then hits every peer alike instead of one.

Peak memory: on CUDA, ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``. On
CPU torch does not count its allocations (and ``tracemalloc`` does not see them), so we read the
kernel's resident-set high-water mark (``VmHWM``) in a fresh process per measurement: the mark is
reset by writing ``5`` to ``/proc/self/clear_refs`` (Linux ≥ 4.0) and the baseline is the resident
set just before, after ``malloc_trim`` has given freed heap pages back to the kernel.

FLOPs are counted analytically from the *task's* shape (not from each peer's modules), so the
same work is credited to every peer; see :func:`dense_train_flops`.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
MiB = 2**20


# ---------------------------------------------------------------------------------------------
# timing


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _time_window(fn: Callable[[], Any], n: int, device: str) -> float:
    """Seconds per call of ``fn``, averaged over ``n`` back-to-back calls."""
    sync(device)
    start = time.perf_counter()
    for _ in range(n):
        fn()
    sync(device)
    return (time.perf_counter() - start) / n


def time_interleaved(
    fns: dict[str, Callable[[], Any]],
    *,
    device: str = "cpu",
    warmup: int = 2,
    rounds: int = 5,
    min_window_s: float = 0.2,
) -> dict[str, dict[str, float]]:
    """Seconds per call of each function, timed in interleaved windows.

    Each function is warmed up ``warmup`` times (the last warm-up call calibrates how many calls
    fill ``min_window_s``). Then ``rounds`` rounds each time one window per function, the order
    rotating so no function always runs first. Returns ``{name: {median_s, min_s, max_s, calls,
    windows_s}}``; ``windows_s[r]`` is round ``r``'s window, so two functions' windows of the same
    round ran back to back (see :func:`paired_ratio`).
    """
    names = list(fns)
    per_window: dict[str, int] = {}
    for name in names:
        for _ in range(max(warmup - 1, 0)):
            fns[name]()
        t = _time_window(fns[name], 1, device)
        per_window[name] = max(1, math.ceil(min_window_s / max(t, 1e-9)))
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            samples[name].append(_time_window(fns[name], per_window[name], device))
    return {
        name: dict(
            median_s=statistics.median(s), min_s=min(s), max_s=max(s), calls=per_window[name] * rounds,
            windows_s=[rounded(x) for x in s],
        )
        for name, s in samples.items()
    }


def paired_ratio(slow: list[float], fast: list[float]) -> float:
    """Median over rounds of ``slow[r] / fast[r]`` (times of the same round, run back to back).

    On a shared machine the load drifts between rounds; a ratio within a round cancels most of
    that drift, so this is steadier than the ratio of the two medians.
    """
    return statistics.median(s / f for s, f in zip(slow, fast))


def square_matmul(device: str = "cpu", n: int = 2048) -> tuple[Callable[[], Any], int]:
    """A large fp32 n×n @ n×n product and its FLOPs (2n³): the yardstick for the matmul peak.

    Timed among the peers by :func:`time_interleaved`, it measures the peak under the same
    machine load as they ran, which is what MFU must divide by on a shared machine.
    """
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    return (lambda: torch.matmul(a, b)), 2 * n**3


# ---------------------------------------------------------------------------------------------
# memory


def base_parser(description: str, sizes) -> argparse.ArgumentParser:
    """The flags every benchmark shares: device, threads, size (``--quick`` = ``--size quick``)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--size", default="full", choices=list(sizes))
    p.add_argument("--quick", action="store_true", help="same as --size quick")
    return p


def translator_parser(description: str, sizes) -> argparse.ArgumentParser:
    """``base_parser`` plus what a benchmark of one trained translator takes: the checkpoint,
    ``--sentences`` (only the first N test sentences) and ``--out``."""
    p = base_parser(description, sizes)
    p.add_argument("checkpoint", help="a trained translator: a run folder (its final/) or a checkpoint")
    p.add_argument("--sentences", type=int, help="only the first N test sentences")
    p.add_argument("--out", help="also write the JSON here")
    return p


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None  # no /proc (not Linux): memory columns are reported as null
    return None


def trim_allocator() -> None:
    """Give freed heap memory back to the kernel (glibc ``malloc_trim``), so RSS ≈ live memory."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        return  # not glibc: RSS then includes freed-but-kept heap, which only overstates memory


class PeakMemory:
    """Peak memory above the level at ``__enter__``, in MiB, as ``.peak_mib`` after ``__exit__``.

    CUDA: bytes allocated by torch. CPU: resident set size of this process (reset high-water
    mark). Use one fresh process per measurement on CPU (see the module docstring).
    """

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self.peak_mib = float("nan")

    def __enter__(self) -> "PeakMemory":
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._base = torch.cuda.memory_allocated()
            return self
        trim_allocator()
        try:
            Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
            self._resettable = True
        except OSError:
            self._resettable = False  # fall back to ru_maxrss: only peaks above earlier ones count
        self._base = (_status_kib("VmRSS") or 0) * 1024
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated()
        elif self._resettable and _status_kib("VmHWM") is not None:
            peak = _status_kib("VmHWM") * 1024
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
        self.peak_mib = max(peak - self._base, 0) / MiB


def run_child(module: str, args: list[str], timeout_s: float = 600) -> dict[str, Any]:
    """Run ``python -m module args`` from the repository root; return the JSON of its last line."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout_s,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_children(calls: list[tuple[str, list[str]]], jobs: int = 1) -> list[dict[str, Any]]:
    """:func:`run_child` for each ``(module, args)``, ``jobs`` at a time, results in order.

    Running memory children side by side does not change what each measures (a resident set is
    per process); run them after the timings, which they would disturb.
    """
    with ThreadPoolExecutor(max_workers=max(jobs, 1)) as pool:
        return list(pool.map(lambda call: run_child(*call), calls))


# ---------------------------------------------------------------------------------------------
# FLOPs


def dense_train_flops(matmul_params: int, tokens: int) -> int:
    """6·N·tokens: a forward pass does 2 FLOPs (multiply + add) per weight per token, and the
    backward pass twice that (gradients for the input and for the weight). Kaplan et al., 2020."""
    return 6 * matmul_params * tokens


def attention_train_flops(queries: int, keys: int, d: int) -> int:
    """12·T·S·d for one attention layer over T queries and S keys (d = heads × head width):
    QKᵀ and PV are 2·T·S·d FLOPs each forward, ×3 for forward + backward. A causal mask is *not*
    halved (the PaLM appendix B convention), so masked and unmasked work count alike."""
    return 12 * queries * keys * d


# ---------------------------------------------------------------------------------------------
# output


def environment(device: str, threads: int) -> dict[str, Any]:
    """Versions and settings a reader needs to reproduce a number."""
    info: dict[str, Any] = dict(device=device, threads=threads, torch=torch.__version__, python=sys.version.split()[0])
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name()
    else:
        info["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    return info


def emit(result: dict[str, Any], out: str | None) -> None:
    """Print the JSON (the benchmark's answer) and, with ``out``, write it to that file too."""
    text = json.dumps(result, indent=2)
    print(text)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n")


def rounded(x: float, digits: int = 4) -> float:
    """Round to ``digits`` significant digits (JSON that a person can read)."""
    return float(f"{x:.{digits}g}") if math.isfinite(x) else x
