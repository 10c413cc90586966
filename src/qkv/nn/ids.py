"""The one check on token ids before they index an embedding table.

``nn.Embedding`` given an id outside ``[0, num_embeddings)`` raises a bare ``IndexError: index
out of range in self`` on CPU, and on CUDA trips a device-side assert that poisons the whole
CUDA context. Every model family (the three Transformer families through ``Stack``, and the
LSTM baselines) calls :func:`check_ids` where ids enter the table, so a wrong tokenizer or a
corrupted batch is reported as a :class:`~qkv.errors.InputError` naming the id and where it is.
"""

from __future__ import annotations

from torch import Tensor

from ..errors import InputError


def check_ids(ids: Tensor, vocab_size: int, name: str = "input_ids") -> None:
    """Raise :class:`InputError` if ``ids`` (any shape, integer) holds an id outside ``[0, vocab_size)``.

    Runs on CPU tensors only. On an accelerator reading the min/max back to the host would
    stall every forward (a device→host sync in the hot path), so there the check is skipped
    and an out-of-range id still meets the kernel's own device-side assert.
    """
    if ids.device.type != "cpu" or ids.numel() == 0:
        return
    low, high = (int(v) for v in ids.aminmax())  # one pass over the ids
    if low >= 0 and high < vocab_size:
        return
    first = ((ids < 0) | (ids >= vocab_size)).nonzero()[0]  # index of the first bad id, row-major
    where = tuple(first.tolist())
    raise InputError(
        f"{name} hold id {int(ids[where])} at {where}, outside the vocabulary [0, {vocab_size})",
        hint="encode the text with the tokenizer the model was trained with",
    )
