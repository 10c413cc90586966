"""Dynamic micro-batching: concurrent requests share one model call.

One worker thread owns the model. A request puts its items (one per sentence or prompt) on a
bounded queue and awaits their futures. The worker takes the oldest item, waits up to
``window_s`` for more items that can share its batch (same ``key``: the same decoding
settings), runs up to ``max_batch`` of them in one call, and answers each future. A full
queue refuses new work at once (:class:`QueueFull`, HTTP 429) rather than letting latency
grow without bound; a request that waits past its timeout is dropped from the queue
(HTTP 504). ``close()`` refuses new work and lets the worker finish what is queued.

Batching changes nothing but speed: an item's key holds every setting that affects its
output, and rows that could not share a batch without changing their answer get a key of
their own (see ``serve.py``).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter, deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Sequence

RunBatch = Callable[[Hashable, list[Any]], Sequence[Any]]  # (key, payloads) -> one result per payload


class QueueFull(Exception):
    """The queue has no room for the request's items."""


class Closed(Exception):
    """The batcher is shutting down and takes no new work."""


@dataclass(eq=False)  # compared by identity: the queue removes this very item
class Item:
    key: Hashable
    payload: Any
    future: Future = field(default_factory=Future)
    enqueued: float = field(default_factory=time.monotonic)


class MicroBatcher:
    """Groups queued items by key into batches for ``run_batch`` on one worker thread."""

    def __init__(self, run_batch: RunBatch, *, window_s: float = 0.005, max_batch: int = 16,
                 max_queue: int = 256) -> None:
        self.run_batch, self.window_s, self.max_batch, self.max_queue = run_batch, window_s, max_batch, max_queue
        self.queue: deque[Item] = deque()
        self.cond = threading.Condition()
        self.closing = False
        self.batch_sizes: Counter[int] = Counter()
        self.worker = threading.Thread(target=self._work, name="qkv-serve-worker", daemon=True)
        self.worker.start()

    # -- the request side (event loop) ---------------------------------------------------------

    def submit(self, key: Hashable, payloads: list[Any]) -> list[Future]:
        """Queue one item per payload, all or none; raises :class:`QueueFull` or :class:`Closed`."""
        items = [Item(key, p) for p in payloads]
        with self.cond:
            if self.closing:
                raise Closed("the server is shutting down")
            if len(self.queue) + len(items) > self.max_queue:
                raise QueueFull(f"the queue holds {len(self.queue)} of {self.max_queue} items; "
                                f"this request needs {len(items)} more; retry later")
            self.queue.extend(items)
            self.cond.notify()
        return [item.future for item in items]

    async def run(self, key: Hashable, payloads: list[Any], timeout_s: float) -> list[Any]:
        """The results for ``payloads``; raises ``TimeoutError`` after ``timeout_s`` seconds."""
        futures = self.submit(key, payloads)
        try:
            return await asyncio.wait_for(asyncio.gather(*map(asyncio.wrap_future, futures)), timeout_s)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            for f in futures:
                f.cancel()  # still queued: the worker skips it; already running: the answer is dropped
            raise

    @property
    def depth(self) -> int:
        return len(self.queue)

    def close(self, timeout_s: float | None = None) -> None:
        """Take no new work; return once the worker has finished everything queued."""
        with self.cond:
            self.closing = True
            self.cond.notify_all()
        self.worker.join(timeout_s)

    # -- the worker side ------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._run(batch)

    def _next_batch(self) -> list[Item] | None:
        """The oldest item and up to ``max_batch - 1`` more of its key, after the window; None to stop."""
        with self.cond:
            while not self.queue:
                if self.closing:
                    return None
                self.cond.wait()
            first = self.queue[0]
            deadline = first.enqueued + self.window_s
            while not self.closing and self._count(first.key) < self.max_batch and time.monotonic() < deadline:
                self.cond.wait(max(0.0, deadline - time.monotonic()))
            batch = [item for item in self.queue if item.key == first.key][: self.max_batch]
            for item in batch:
                self.queue.remove(item)
        return [item for item in batch if item.future.set_running_or_notify_cancel()]

    def _count(self, key: Hashable) -> int:
        return sum(item.key == key for item in self.queue)

    def _run(self, batch: list[Item]) -> None:
        if not batch:
            return
        self.batch_sizes[len(batch)] += 1
        try:
            results = self.run_batch(batch[0].key, [item.payload for item in batch])
        except BaseException as e:  # noqa: BLE001 - the waiting requests get the failure, the worker goes on
            for item in batch:
                item.future.set_exception(e)
            return
        for item, result in zip(batch, results):
            item.future.set_result(result)


__all__ = ["MicroBatcher", "QueueFull", "Closed", "Item"]
