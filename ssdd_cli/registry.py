"""One registry pattern for every pluggable thing: a decorator, a lookup and a lister (timm's).

    METHODS: Registry[Method] = Registry("method")

    @METHODS.register("ssdd")
    class SSDD: ...

    METHODS.get("ssdd")      # the registered object
    METHODS.names()          # sorted names

Registering a name twice is a programming error (`ValueError`). Looking up an unknown name is a
user error (`UsageError`) that lists the valid names and carries the option it concerns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from ssdd_cli.errors import UsageError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named objects of one kind (`kind` is used in messages, e.g. "method")."""

    def __init__(self, kind: str, *, option: str | None = None) -> None:
        self.kind = kind
        self.option = option if option is not None else kind
        self._items: dict[str, T] = {}

    def add(self, name: str, item: T) -> T:
        """Register `item` under `name`; a name may be registered once only."""
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[name] = item
        return item

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of `add`: returns the object unchanged."""

        def decorate(item: T) -> T:
            return self.add(name, item)

        return decorate

    def get(self, name: str) -> T:
        """The object registered as `name`; a `UsageError` listing the valid names otherwise."""
        try:
            return self._items[name]
        except KeyError:
            raise UsageError(f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}.",
                             option=self.option) from None

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
