# -*- test-case-name: tests.ivrserver.test_xmlcodec -*-
"""
How a GctiMsg message is declared: its attributes and child elements in the
DTD's order, and the L{message} decorator that turns a declaration into a
frozen dataclass the XML codec walks (docs/ivr-server-xml.rst §2, §3; the DTD
in the guide's appendix).

Field names are the Genesys attribute and element names, exactly: a reader
with the IVR SDK XML guide open sees the same words in the code.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

C2S = "C->S"
S2C = "S->C"
BOTH = "both"

_MISSING = dataclasses.MISSING


class Field:
    """One attribute or child element of a message."""

    kind = "?"

    def __init__(self, choices: tuple[str, ...] | None = None, required: bool = False, default: Any = None):
        self.choices = choices
        self.required = required
        self.default = default
        self.name = None  # set by the decorator


class A(Field):
    """An XML attribute with text value (optionally one of C{choices})."""

    kind = "attr"


class E(Field):
    """A child element with #PCDATA content (C{CalledNum}, C{CED}, C{RequestId}…)."""

    kind = "text"


class KV(Field):
    """A key-value list child element (C{UDataEx}, C{ExtnsEx}, C{Parameters}, C{ConfigOptions})."""

    kind = "kv"

    def __init__(self, required: bool = False):
        super().__init__(None, required, ())


class ValueE(Field):
    """An empty child element carrying an attribute C{Value} (StatResp's C{<Result Value='12'/>}, erratum E11)."""

    kind = "value"


class Sub(Field):
    """Exactly one child element out of several typed ones (MonitorInfo's Server | Port | Agent)."""

    kind = "sub"

    def __init__(self, *classes, required: bool = False):
        super().__init__(None, required, None)
        self.classes = classes


@dataclasses.dataclass(frozen=True, slots=True)
class Message:
    """Base of every GctiMsg message; C{CallId} is the envelope's C{<CallId>}."""

    element = ""
    direction = BOTH
    has_call_id = True
    fields: ClassVar[tuple] = ()
    attr_names: ClassVar[tuple] = ()
    attr_set: ClassVar[frozenset] = frozenset()
    required_attrs: ClassVar[tuple] = ()
    child_fields: ClassVar[tuple] = ()

    def summary(self) -> str:
        """A short one-line description for logs and ladder views."""
        parts = [self.element]
        for f in self.fields:
            if f.kind == "attr" or (f.kind == "text" and f.name != "RequestId"):
                value = getattr(self, f.name)
                if value is not None:
                    parts.append(f"{f.name}={value}")
        return " ".join(parts)


def message(direction: str, element: str | None = None, has_call_id: bool = True):
    """
    Class decorator: collect the L{Field}s declared on the class body, in
    order (the DTD's order), and build a frozen, slotted, keyword-only
    dataclass with a leading C{CallId}.  Required fields have no default.
    """

    def build(cls):
        declared = [(k, v) for k, v in vars(cls).items() if isinstance(v, Field)]
        spec = []
        dc_fields = [("CallId", "str | None", dataclasses.field(default=None, kw_only=True))]
        for name, f in declared:
            f.name = name
            spec.append(f)
            if f.required:
                dc_fields.append((name, Any, dataclasses.field(kw_only=True)))
            else:
                dc_fields.append((name, Any, dataclasses.field(default=f.default, kw_only=True)))
        namespace = {
            "element": element or cls.__name__,
            "direction": direction,
            "has_call_id": has_call_id,
            "fields": tuple(spec),
            # precomputed for the codec's hot path
            "attr_names": tuple(f.name for f in spec if f.kind == "attr"),
            "attr_set": frozenset(f.name for f in spec if f.kind == "attr"),
            "required_attrs": tuple(f.name for f in spec if f.kind == "attr" and f.required),
            "child_fields": tuple(f for f in spec if f.kind != "attr"),
            "__doc__": cls.__doc__,
            "__module__": cls.__module__,
            "__qualname__": cls.__qualname__,
        }
        return dataclasses.make_dataclass(
            cls.__name__, dc_fields, bases=(Message,), namespace=namespace, frozen=True, slots=True
        )

    return build


def part(element: str):
    """Like L{message} for the typed sub-elements of a message (MonitorInfo's Server, Port, Agent)."""

    def build(cls):
        built = message(BOTH, element)(cls)
        return built

    return build
