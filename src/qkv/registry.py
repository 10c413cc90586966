"""A name → class table for each design axis (``POSITION["rope"]``, ``NORM["rms"]``).

Adding a variant is one class and one ``@REGISTRY.register("name")`` line; the config
stores the name as a string, so configs serialise to JSON and a typo fails with the list of
what exists instead of a bare ``KeyError``.
"""

from __future__ import annotations

from typing import Callable, TypeVar

T = TypeVar("T")


class Registry(dict):
    """A dict from variant name to constructor that explains unknown names."""

    def __init__(self, axis: str) -> None:
        super().__init__()
        self.axis = axis

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self:
                raise ValueError(f"{self.axis} variant {name!r} is registered twice")
            self[name] = obj
            return obj

        return add

    def __missing__(self, name: str):
        raise KeyError(f"unknown {self.axis} {name!r}; registered: {sorted(self)}")
