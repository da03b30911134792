# -*- test-case-name: tests.ivrserver.test_xmlcodec -*-
"""
GctiMsg documents to and from typed messages.

Output is strict: every attribute and element in the DTD's order, required
fields present, enumerated values checked, C{< > & " '} escaped, characters
XML or the chosen encoding cannot carry refused with L{EncodeError}.  Output
is built as text (it is a fixed, flat shape; a tree would only cost time).

Input is tolerant (reference §1.4, §10): either quote style, with or without
the XML declaration and DOCTYPE, unknown attributes and elements ignored,
the deprecated v1.0 C{UserData}/C{Extensions} NVPair lists read into
C{UDataEx}/C{ExtnsEx}.  It is parsed by lxml with a parser that never loads
a DTD, never touches the network and never expands entities; a document that
declares entities, or refers to any entity other than the five predefined
ones and character references, is rejected with L{GctiMsgError}.
"""

from __future__ import annotations

import dataclasses
import re

from lxml import etree

from ctic.ivrserver.fields import Message
from ctic.ivrserver.messages import CATALOGUE
from ctic.ivrserver.userdata import Bin, Int, List, Node, Str, scalar_from_text

__all__ = ["GctiMsgError", "UnknownMessage", "EncodeError", "Encoder", "Decoder", "encode", "decode"]

ENCODINGS = ("ISO-8859-1", "UTF-8")


class GctiMsgError(Exception):
    """
    A document is not a GctiMsg message we can read.

    @ivar reason: what is wrong.
    @ivar call_id: the envelope CallId when it could be read, so the peer can
        be answered about that call.
    @ivar element: the message element name when known.
    """

    def __init__(self, reason: str, call_id: str | None = None, element: str | None = None):
        self.reason = reason
        self.call_id = call_id
        self.element = element
        super().__init__(reason)


class UnknownMessage(GctiMsgError):
    """The document is well formed but its message element is not in the catalogue."""


class EncodeError(ValueError):
    """A message cannot be written as the DTD and the encoding require."""


# --- output ----------------------------------------------------------------

# XML 1.0 forbids these; the guide forbids control characters in user data.
_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_SPECIAL = re.compile("[&<>\"'\t\n\r]")
# One search decides the common case (nothing to escape, nothing invalid).
_ANY = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff&<>\"'\t\n\r]")
_ATTR_ESCAPES = str.maketrans({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;",
    "\t": "&#9;", "\n": "&#10;", "\r": "&#13;",  # else attribute normalisation eats them
})
_TEXT_ESCAPES = str.maketrans({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;", "\r": "&#13;",
})


def _checked(value, where: str) -> str:
    if not isinstance(value, str):
        raise EncodeError(f"{where} must be text, not {type(value).__name__}")
    if _INVALID.search(value):
        raise EncodeError(f"{where} contains a character XML cannot carry: {value[:40]!r}")
    return value


def escape_attr(value: str, where: str = "value") -> str:
    if value.__class__ is str and _ANY.search(value) is None:
        return value
    value = _checked(value, where)
    return value.translate(_ATTR_ESCAPES) if _SPECIAL.search(value) else value


def escape_text(value: str, where: str = "value") -> str:
    if value.__class__ is str and _ANY.search(value) is None:
        return value
    value = _checked(value, where)
    return value.translate(_TEXT_ESCAPES) if _SPECIAL.search(value) else value


_WHAT = {"attr": "the attribute", "text": "the element", "kv": "a non-empty", "value": "the element",
         "sub": "the element"}


class Encoder:
    """
    Write messages as complete documents.

    @param encoding: C{ISO-8859-1} (Genesys's default) or C{UTF-8}.
    @param quote: C{'"'} (as IVR clients write) or C{"'"} (as the server writes).
    @param newlines: put the declaration and DOCTYPE on lines of their own
        (as the real client did) or write one line (as the real server does).
    @param dtd_file: the DOCTYPE's system identifier.
    """

    def __init__(self, encoding: str = "ISO-8859-1", quote: str = '"', newlines: bool = True,
                 dtd_file: str = "IServer.dtd"):
        if encoding.upper() not in ENCODINGS:
            raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}")
        if quote not in ('"', "'"):
            raise ValueError("quote must be ' or \"")
        self.encoding = encoding.upper()
        self.quote = quote
        self._writers = {}
        q = quote
        sep = "\n" if newlines else ""
        self._prolog = (
            f"<?xml version={q}1.0{q} encoding={q}{self.encoding}{q}?>{sep}"
            f"<!DOCTYPE GctiMsg SYSTEM {q}{escape_attr(dtd_file)}{q}>{sep}<GctiMsg>"
        )

    def encode(self, msg: Message) -> bytes:
        out = [self._prolog]
        if msg.has_call_id:
            if msg.CallId is None:
                raise EncodeError(f"{msg.element} needs a CallId")
            if not msg.CallId or msg.CallId != msg.CallId.strip():
                # readers strip it (tolerance), so it must survive that
                raise EncodeError(f"CallId {msg.CallId!r} is empty or has surrounding whitespace")
            out.append("<CallId>")
            out.append(escape_text(msg.CallId, "CallId"))
            out.append("</CallId>")
        self._element(msg, out)
        out.append("</GctiMsg>")
        text = "".join(out)
        try:
            return text.encode(self.encoding)
        except UnicodeEncodeError as e:
            raise EncodeError(
                f"{msg.element} has a character {self.encoding} cannot carry: {e.object[e.start:e.end]!r}"
            ) from None

    def _plan(self, cls):
        """Per class: the text around each field, computed once per quote style."""
        plan = self._plans.get(cls)
        if plan is None:
            q = self.quote
            plan = []
            for f in cls.fields:
                if f.kind == "attr":
                    plan.append(("attr", f, f" {f.name}={q}"))
                elif f.kind == "text":
                    plan.append(("text", f, (f"<{f.name}>", f"</{f.name}>")))
                elif f.kind == "value":
                    plan.append(("value", f, f"<{f.name} Value={q}"))
                else:
                    plan.append((f.kind, f, None))
            plan = self._plans[cls] = tuple(plan)
        return plan

    def _element(self, msg: Message, out: list) -> None:
        writer = self._writers.get(msg.__class__)
        if writer is None:
            writer = self._writers[msg.__class__] = self._compile(msg.__class__)
        writer(msg, out)

    def _compile(self, cls):
        """
        Generate one writer function per message class and quote style: the
        fields in DTD order as straight-line code, with no per-field dispatch
        at run time (the codec's hot path; the way dataclasses build __init__).
        """
        q = repr(self.quote)
        name = cls.element
        lines = ["def write(msg, out):", "    children = []", f"    out.append({('<' + name)!r})"]
        env = {"escape_attr": escape_attr, "escape_text": escape_text, "EncodeError": EncodeError, "self": self,
               "fields": {f.name: f for f in cls.fields}}
        for f in cls.fields:
            n = f.name
            where = repr(f"{name} {n}")
            lines.append(f"    v = msg.{n}")
            missing = "v is None" if f.kind != "kv" else "not v"
            if f.required:
                lines.append(f"    if {missing}: raise EncodeError({(name + ' needs ' + _WHAT[f.kind] + ' ' + n)!r})")
            else:
                lines.append(f"    if not ({missing}):")
            ind = "    " if f.required else "        "
            if f.kind == "attr":
                if f.choices is not None:
                    env[f"choices_{n}"] = frozenset(f.choices)
                    lines.append(f"{ind}if v not in choices_{n}: raise EncodeError("
                                 f"{(name + ' ' + n + '=')!r} + repr(v) + {(' is not one of ' + ', '.join(f.choices))!r})")
                lines.append(f"{ind}out.append({(' ' + n + '=') !r} + {q} + escape_attr(v, {where}) + {q})")
            elif f.kind == "text":
                lines.append(f"{ind}children.append({('<' + n + '>')!r} + escape_text(v, {where}) + {('</' + n + '>')!r})")
            elif f.kind == "kv":
                lines.append(f"{ind}children.append({('<' + n + '>')!r})")
                lines.append(f"{ind}self._kv(v, children, {where})")
                lines.append(f"{ind}children.append({('</' + n + '>')!r})")
            elif f.kind == "value":
                lines.append(f"{ind}children.append({('<' + n + ' Value=')!r} + {q} + escape_attr(v, {where}) + {q} + '/>')")
            elif f.kind == "sub":
                env[f"classes_{n}"] = f.classes
                lines.append(f"{ind}if not isinstance(v, classes_{n}): "
                             f"raise EncodeError({(name + ' cannot hold ')!r} + type(v).__name__)")
                lines.append(f"{ind}self._element(v, children)")
        lines += [
            "    if children:",
            "        out.append('>')",
            "        out.extend(children)",
            f"        out.append({('</' + name + '>')!r})",
            "    else:",
            "        out.append('/>')",
        ]
        exec("\n".join(lines), env)
        return env["write"]

    def _kv(self, items, out: list, where: str) -> None:
        q = self.quote
        for item in items:
            if isinstance(item, Node):
                if ":" in item.Name and "UDataEx" in where:
                    # UDataGet lists keys separated by ':' (reference §2.1)
                    raise EncodeError(f"{where}: key {item.Name!r} contains ':'")
                value = item.value
                if not isinstance(value, (Str, Int, Bin)):
                    raise EncodeError(f"{where}: Node {item.Name!r} value must be Str, Int or Bin")
                out.append(
                    f"<Node Name={q}{escape_attr(item.Name, where)}{q} Type={q}{value.type_name}{q}"
                    f" Val={q}{escape_attr(value.text(), where)}{q}/>"
                )
            elif isinstance(item, List):
                if not item.items:
                    raise EncodeError(f"{where}: List {item.Name!r} must hold at least one item")
                out.append(f"<List Name={q}{escape_attr(item.Name, where)}{q}>")
                self._kv(item.items, out, where)
                out.append("</List>")
            else:
                raise EncodeError(f"{where}: {type(item).__name__} is not a Node or List")


# --- input -----------------------------------------------------------------


def _parser() -> etree.XMLParser:
    # Never load the external IServer.dtd, never fetch anything, never expand
    # an entity (reference §1.4, §10 item 3).
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
        huge_tree=False, remove_comments=True, remove_pis=True, recover=False,
    )


_DEPRECATED_LISTS = {"UserData": "UDataEx", "Extensions": "ExtnsEx"}


class Decoder:
    """
    Read complete documents into messages.

    @param max_depth: deepest C{List} nesting accepted (ours; 16 by default).
    """

    def __init__(self, max_depth: int = 16):
        self._parser = _parser()
        self.max_depth = max_depth

    def decode(self, data: bytes) -> Message:
        if b"<!ENTITY" in data:
            raise GctiMsgError("entity declarations are not allowed (the document was not parsed)")
        if data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in data[:4]:
            raise GctiMsgError("only ISO-8859-1 and UTF-8 documents are accepted")
        try:
            root = etree.fromstring(data, self._parser)
        except (etree.XMLSyntaxError, ValueError) as e:  # ValueError: lxml refuses some inputs outright
            raise GctiMsgError(f"malformed XML: {e}") from None
        if root.tag != "GctiMsg":
            raise GctiMsgError(f"root element is {_tag(root)}, not GctiMsg")
        call_id = None
        body = None
        # Fast path for the shape every real document has: <CallId>text</CallId><Message .../>
        if len(root) >= 2:
            first = root[0]
            second = root[1]
            if first.tag == "CallId" and not len(first) and second.tag.__class__ is str:
                call_id = (first.text or "").strip()
                body = second
        for child in (root if body is None else ()):
            tag = child.tag
            if tag is etree.Entity:
                raise GctiMsgError("entity references are not allowed", call_id)
            if tag.__class__ is not str:
                continue
            if tag == "CallId" and call_id is None:
                call_id = self._text(child, call_id).strip()
                continue
            body = child
            break
        if body is None:
            raise GctiMsgError("GctiMsg holds no message element", call_id)
        cls = CATALOGUE.get(body.tag)
        if cls is None:
            raise UnknownMessage(f"unknown message {body.tag!r}", call_id, body.tag)
        kwargs = self._fields(cls, body, call_id)
        if cls.has_call_id:
            if call_id is None:
                raise GctiMsgError(f"{cls.element} has no CallId", None, cls.element)
            kwargs["CallId"] = call_id
        return _build(cls, kwargs)

    def _fields(self, cls, el, call_id) -> dict:
        known = cls.attr_set
        kwargs = {k: v for k, v in el.items() if k in known}
        for name in cls.required_attrs:
            if name not in kwargs:
                raise GctiMsgError(f"{cls.element} lacks the required attribute {name}", call_id, cls.element)
        if not cls.child_fields:
            return kwargs
        children = {}
        if len(el):
            for child in el:
                tag = child.tag
                if tag is etree.Entity:
                    raise GctiMsgError("entity references are not allowed", call_id, cls.element)
                if tag.__class__ is str and tag not in children:
                    children[tag] = child
        name = cls.element
        for f in cls.child_fields:
            kind = f.kind
            if kind == "sub":
                for sub in f.classes:
                    child = children.get(sub.element)
                    if child is not None:
                        kwargs[f.name] = _build(sub, self._fields(sub, child, call_id))
                        break
                else:
                    if f.required:
                        raise GctiMsgError(
                            f"{name} holds none of {', '.join(c.element for c in f.classes)}", call_id, name
                        )
                continue
            child = children.get(f.name)
            if child is None:
                if kind == "kv" and f.name in ("UDataEx", "ExtnsEx"):
                    old = "UserData" if f.name == "UDataEx" else "Extensions"
                    if old in children:
                        kwargs[f.name] = self._nvpairs(children[old], call_id, name)
                        continue
                if f.required:
                    raise GctiMsgError(f"{name} lacks the required element {f.name}", call_id, name)
                continue
            if kind == "text":
                kwargs[f.name] = self._text(child, call_id)
            elif kind == "kv":
                kwargs[f.name] = self._kv(child, call_id, name, 0)
            elif kind == "value":
                kwargs[f.name] = child.get("Value")
        return kwargs

    @staticmethod
    def _text(el, call_id) -> str:
        if len(el):
            for child in el:
                if child.tag is etree.Entity:
                    raise GctiMsgError("entity references are not allowed", call_id)
            return "".join(el.itertext())
        return el.text or ""

    def _kv(self, el, call_id, where, depth) -> tuple:
        if depth >= self.max_depth:
            raise GctiMsgError(f"{where} {el.tag}: lists nested deeper than {self.max_depth}", call_id, where)
        items = []
        for child in el:
            tag = child.tag
            if tag == "Node":
                key = child.get("Name")
                type_name = child.get("Type")
                val = child.get("Val")
                if key is None or type_name is None or val is None:
                    raise GctiMsgError(f"{where} {el.tag}: Node needs Name, Type and Val", call_id, where)
                try:
                    items.append(Node(key, scalar_from_text(type_name, val)))
                except ValueError as e:
                    raise GctiMsgError(f"{where} {el.tag}: {e}", call_id, where) from None
            elif tag == "List":
                key = child.get("Name")
                if key is None:
                    raise GctiMsgError(f"{where} {el.tag}: List needs Name", call_id, where)
                items.append(List(key, self._kv(child, call_id, where, depth + 1)))
            elif tag is etree.Entity:
                raise GctiMsgError("entity references are not allowed", call_id, where)
        return tuple(items)

    def _nvpairs(self, el, call_id, where) -> tuple:
        # Deprecated v1.0 form: <NVPair><NVName/><NVVal/></NVPair> (reference §2.1)
        items = []
        for pair in el:
            if pair.tag != "NVPair":
                continue
            key = pair.find("NVName")
            val = pair.find("NVVal")
            if key is None:
                raise GctiMsgError(f"{where} {el.tag}: NVPair without NVName", call_id, where)
            items.append(Node(self._text(key, call_id), Str(self._text(val, call_id) if val is not None else "")))
        return tuple(items)


_DEFAULTS: dict = {}
_new = object.__new__
_set = object.__setattr__


def _build(cls, kwargs):
    """
    Construct a frozen message from checked field values without going
    through the generated __init__ (a third of the decode time); the
    decoder has already enforced what __init__ would.
    """
    defaults = _DEFAULTS.get(cls)
    if defaults is None:
        defaults = _DEFAULTS[cls] = tuple(
            (f.name, None if f.default is dataclasses.MISSING else f.default) for f in dataclasses.fields(cls)
        )
    obj = _new(cls)
    get = kwargs.get
    for name, default in defaults:
        _set(obj, name, get(name, default))
    return obj


def _tag(el) -> str:
    return el.tag if isinstance(el.tag, str) else repr(el.tag)


_default_encoder = Encoder()
_default_decoder = Decoder()


def encode(msg: Message) -> bytes:
    """Encode with the client's default style (ISO-8859-1, double quotes)."""
    return _default_encoder.encode(msg)


def decode(data: bytes) -> Message:
    return _default_decoder.decode(data)
