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
    value = _checked(value, where)
    return value.translate(_ATTR_ESCAPES) if _SPECIAL.search(value) else value


def escape_text(value: str, where: str = "value") -> str:
    value = _checked(value, where)
    return value.translate(_TEXT_ESCAPES) if _SPECIAL.search(value) else value


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

    def _element(self, msg: Message, out: list) -> None:
        q = self.quote
        name = msg.element
        out.append("<" + name)
        children = []
        for f in msg.fields:
            value = getattr(msg, f.name)
            kind = f.kind
            if kind == "attr":
                if value is None:
                    if f.required:
                        raise EncodeError(f"{name} needs the attribute {f.name}")
                    continue
                if f.choices is not None and value not in f.choices:
                    raise EncodeError(f"{name} {f.name}={value!r} is not one of {', '.join(f.choices)}")
                out.append(f" {f.name}={q}{escape_attr(value, f'{name} {f.name}')}{q}")
            elif kind == "text":
                if value is None:
                    if f.required:
                        raise EncodeError(f"{name} needs the element {f.name}")
                    continue
                children.append(f"<{f.name}>{escape_text(value, f'{name} {f.name}')}</{f.name}>")
            elif kind == "kv":
                if not value:
                    if f.required:
                        raise EncodeError(f"{name} needs a non-empty {f.name}")
                    continue
                parts = [f"<{f.name}>"]
                self._kv(value, parts, f"{name} {f.name}")
                parts.append(f"</{f.name}>")
                children.append("".join(parts))
            elif kind == "value":
                if value is None:
                    continue
                children.append(f"<{f.name} Value={q}{escape_attr(value, f'{name} {f.name}')}{q}/>")
            elif kind == "sub":
                if value is None:
                    if f.required:
                        raise EncodeError(f"{name} needs one of {', '.join(c.element for c in f.classes)}")
                    continue
                if not isinstance(value, f.classes):
                    raise EncodeError(f"{name} cannot hold {type(value).__name__}")
                sub = []
                self._element(value, sub)
                children.append("".join(sub))
        if children:
            out.append(">")
            out.extend(children)
            out.append(f"</{name}>")
        else:
            out.append("/>")

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
        except etree.XMLSyntaxError as e:
            raise GctiMsgError(f"malformed XML: {e}") from None
        except ValueError as e:  # lxml refuses some inputs outright
            raise GctiMsgError(f"malformed XML: {e}") from None
        if root.tag != "GctiMsg":
            raise GctiMsgError(f"root element is {_tag(root)}, not GctiMsg")
        call_id = None
        body = None
        for child in root:
            tag = child.tag
            if tag is etree.Entity:
                raise GctiMsgError("entity references are not allowed", call_id)
            if not isinstance(tag, str):
                continue
            if tag == "CallId" and body is None and call_id is None:
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
        return cls(**kwargs)

    def _fields(self, cls, el, call_id) -> dict:
        name = cls.element
        kwargs = {}
        children = {}
        for child in el:
            tag = child.tag
            if tag is etree.Entity:
                raise GctiMsgError("entity references are not allowed", call_id, name)
            if isinstance(tag, str) and tag not in children:
                children[tag] = child
        for f in cls.fields:
            kind = f.kind
            if kind == "attr":
                value = el.get(f.name)
                if value is None:
                    if f.required:
                        raise GctiMsgError(f"{name} lacks the required attribute {f.name}", call_id, name)
                    continue
                kwargs[f.name] = value
                continue
            if kind == "sub":
                continue
            child = children.get(f.name)
            if kind == "kv" and child is None and f.name in ("UDataEx", "ExtnsEx"):
                old = "UserData" if f.name == "UDataEx" else "Extensions"
                if old in children:
                    kwargs[f.name] = self._nvpairs(children[old], call_id, name)
                    continue
            if child is None:
                if f.required:
                    raise GctiMsgError(f"{name} lacks the required element {f.name}", call_id, name)
                continue
            if kind == "text":
                kwargs[f.name] = self._text(child, call_id)
            elif kind == "kv":
                kwargs[f.name] = self._kv(child, call_id, name, 0)
            elif kind == "value":
                kwargs[f.name] = child.get("Value")
        for f in cls.fields:
            if f.kind == "sub":
                for sub in f.classes:
                    child = children.get(sub.element)
                    if child is not None:
                        kwargs[f.name] = sub(**self._fields(sub, child, call_id))
                        break
                else:
                    if f.required:
                        raise GctiMsgError(
                            f"{name} holds none of {', '.join(c.element for c in f.classes)}", call_id, name
                        )
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


def _tag(el) -> str:
    return el.tag if isinstance(el.tag, str) else repr(el.tag)


_default_encoder = Encoder()
_default_decoder = Decoder()


def encode(msg: Message) -> bytes:
    """Encode with the client's default style (ISO-8859-1, double quotes)."""
    return _default_encoder.encode(msg)


def decode(data: bytes) -> Message:
    return _default_decoder.decode(data)
