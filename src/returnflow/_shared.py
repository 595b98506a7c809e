"""A service attribute kept by another object: the service shares its store, ports, policy
and clock with its dispatcher, and replacing one on either changes it for both."""

from __future__ import annotations

from typing import Any, Generic, TypeVar, overload

__all__ = ["Shared"]

_T = TypeVar("_T")


class Shared(Generic[_T]):
    """An attribute read from and written to ``obj.dispatcher``."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> Shared[_T]: ...
    @overload
    def __get__(self, obj: Any, objtype: type | None = None) -> _T: ...
    def __get__(self, obj: Any | None, objtype: type | None = None) -> Any:
        return self if obj is None else getattr(obj.dispatcher, self._name)

    def __set__(self, obj: Any, value: _T) -> None:
        setattr(obj.dispatcher, self._name, value)
