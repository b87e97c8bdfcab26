"""Plain value records for the slow path, without ``dataclasses``.

The slow path runs at the first start after a change, inside some user's interpreter start-up;
its budget is "no more than importing platformdirs, tomllib and ssl" (docs/architecture.md,
"Two paths"). Importing ``dataclasses`` pulls in ``inspect``, ``ast``, ``dis`` and
``tokenize``: ~28 M instructions, about a fifth of that budget, for records that need nothing
but ``__init__``, ``==`` and a readable ``repr``. Subclasses list their fields in
``__slots__`` and write a typed ``__init__``; this base supplies the rest.
"""

from __future__ import annotations

from typing import Any


class Record:
    """Equality, ``repr`` and (for frozen records) hashing from ``__slots__``."""

    __slots__: tuple[str, ...] = ()

    def _fields(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._fields() == other._fields()

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{self.__class__.__name__}({inner})"

    __hash__ = None  # type: ignore[assignment]  # mutable by default


class FrozenRecord(Record):
    """A ``Record`` whose fields are set once in ``__init__`` and never again."""

    __slots__ = ()

    def __setattr__(self, name: str, value: Any) -> None:
        if hasattr(self, name):
            raise AttributeError(f"{self.__class__.__name__}.{name} is read-only")
        object.__setattr__(self, name, value)

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(self._fields())
