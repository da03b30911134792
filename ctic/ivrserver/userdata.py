# -*- test-case-name: tests.ivrserver.test_xmlcodec -*-
"""
Key-value lists as IVR Server carries them: C{UDataEx} (attached user data),
C{ExtnsEx} (extensions), C{Parameters} (treatment parameters) and
C{ConfigOptions} (docs/ivr-server-xml.rst §2.1).

A list is a tuple of L{Node} (a named scalar) and L{List} (a named nested
list).  A scalar is L{Str}, L{Int} or L{Bin}, the three C{Node Type}s of the
DTD.  Keys may repeat (C{UDataSet Action='Add'} may create duplicates), so
a list is a tuple, not a dict; L{as_dict} and L{kvlist} convert for the
common case.

C{Bin} values: nobody says how they are written (docs/ivr-server-xml.rst
§2.1, §7).  ctic
writes them as hexadecimal text and reads hexadecimal in either case; that
choice is ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Union

__all__ = ["Str", "Int", "Bin", "Node", "List", "KVList", "kvlist", "as_dict", "kv_size"]


@dataclass(frozen=True, slots=True)
class Str:
    value: str

    type_name = "Str"

    def text(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Int:
    value: int

    type_name = "Int"

    def text(self) -> str:
        return str(self.value)


@dataclass(frozen=True, slots=True)
class Bin:
    value: bytes

    type_name = "Bin"

    def text(self) -> str:
        # ours: hexadecimal (Bin's encoding is unknown, docs/ivr-server-xml.rst §2.1)
        return self.value.hex()


Scalar = Union[Str, Int, Bin]


@dataclass(frozen=True, slots=True)
class Node:
    """C{<Node Name=… Type=… Val=…/>}."""

    Name: str
    value: Scalar

    @property
    def python(self):
        return self.value.value


@dataclass(frozen=True, slots=True)
class List:
    """C{<List Name=…>(Node|List)+</List>}."""

    Name: str
    items: tuple

    @property
    def python(self):
        return as_dict(self.items)


KVList = tuple  # of Node | List


def scalar_from_text(type_name: str, text: str) -> Scalar:
    """Raise L{ValueError} with a reason when C{Val} does not fit C{Type}."""
    if type_name == "Str":
        return Str(text)
    if type_name == "Int":
        try:
            return Int(int(text.strip(), 10))
        except ValueError:
            raise ValueError(f"Node Type='Int' has a non-integer Val {text!r}") from None
    if type_name == "Bin":
        try:
            return Bin(bytes.fromhex(text))
        except ValueError:
            raise ValueError(f"Node Type='Bin' Val is not hexadecimal: {text[:40]!r}") from None
    raise ValueError(f"Node Type {type_name!r} is not Int, Str or Bin")


def _item(name: str, value) -> Node | List:
    if isinstance(value, (Str, Int, Bin)):
        return Node(name, value)
    if isinstance(value, bool):
        return Node(name, Str("true" if value else "false"))
    if isinstance(value, int):
        return Node(name, Int(value))
    if isinstance(value, str):
        return Node(name, Str(value))
    if isinstance(value, (bytes, bytearray)):
        return Node(name, Bin(bytes(value)))
    if isinstance(value, Mapping):
        return List(name, kvlist(value))
    raise TypeError(f"user data value for {name!r} must be str, int, bytes or a mapping, not {type(value).__name__}")


def kvlist(data: Mapping | tuple | list | None) -> KVList:
    """
    Build a list from a mapping (str -> str/int/bytes/mapping) or pass a
    ready tuple of L{Node}/L{List} through.
    """
    if data is None:
        return ()
    if isinstance(data, Mapping):
        return tuple(_item(k, v) for k, v in data.items())
    items = tuple(data)
    for item in items:
        if not isinstance(item, (Node, List)):
            raise TypeError(f"a key-value list holds Node and List, not {type(item).__name__}")
    return items


def as_dict(items: KVList | None) -> dict:
    """Plain Python values by key; for a repeated key the last one wins."""
    return {item.Name: item.python for item in items or ()}


def kv_size(items: KVList) -> int:
    """Approximate packed size (keys + values), for the 16,000-byte user-data limit."""
    total = 0
    for item in items:
        total += len(item.Name)
        if isinstance(item, List):
            total += kv_size(item.items)
        else:
            total += len(item.value.text())
    return total
