# -*- test-case-name: tests.ivrserver.test_xmlcodec -*-
"""
GctiMsg documents to typed messages, tolerantly and safely.

Input is tolerant (docs/ivr-server-xml.rst §1.4, §10): either quote style,
with or without the XML declaration and DOCTYPE, unknown attributes and
elements ignored, the deprecated v1.0 C{UserData}/C{Extensions} NVPair lists
read into C{UDataEx}/C{ExtnsEx}.  It is parsed by lxml with a parser that never loads
a DTD, never touches the network and never expands entities; a document that
declares entities, or refers to any entity other than the five predefined
ones and character references, is rejected with L{GctiMsgError}.

The usual flat document (a CallInfoResp, a NewCall without user data) is in
a strict subset of XML where lxml's reading is plain text (see C{_CANONICAL});
such documents are read without building a tree, to the same message, and
everything else is left to lxml.
"""

from __future__ import annotations

import dataclasses
import re

from lxml import etree

from ctic.ivrserver.fields import Message
from ctic.ivrserver.messages import CATALOGUE
from ctic.ivrserver.userdata import List, Node, Str, scalar_from_text

__all__ = ["GctiMsgError", "UnknownMessage", "Decoder"]


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


def _parser(encoding: str) -> etree.XMLParser:
    # Never load the external IServer.dtd, never fetch anything, never expand
    # an entity (docs/ivr-server-xml.rst §1.4, §10 item 3).
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
        huge_tree=False, remove_comments=True, remove_pis=True, recover=False, encoding=encoding,
    )


# The declarations both real peers write (docs/ivr-server-xml.rst §1.4).
# An ASCII document reads the same in ISO-8859-1 and UTF-8, and libxml2 reads UTF-8 without a
# conversion pass, so such documents go to a parser told they are UTF-8.
_LATIN1_DECLARATIONS = (
    b"<?xml version='1.0' encoding='ISO-8859-1'?>",
    b'<?xml version="1.0" encoding="ISO-8859-1"?>',
)

# Every other document is parsed in the encoding its declaration names, which
# must be ISO-8859-1 or UTF-8 (UTF-8 when it names none): libxml2 is never
# left to pick a decoder itself, so the byte checks in L{Decoder.decode} see
# the markup as the parser will (a UTF-7 document could spell '<!ENTITY' as
# '+ADw-!ENTITY', and libxml2 expands such an entity in attribute values).
_DECLARED_ENCODING = re.compile(rb"(?:\xef\xbb\xbf)?<\?xml\s[^>]*?\bencoding\s*=\s*(['\"])(.*?)\1")
_UTF8_NAMES = frozenset((b"UTF-8", b"UTF8", b"US-ASCII", b"ASCII"))
_LATIN1_NAMES = frozenset((b"ISO-8859-1", b"ISO8859-1", b"ISO_8859-1", b"LATIN1", b"LATIN-1"))

# An '&' that starts anything but a character reference or a predefined
# entity.  With a DOCTYPE (external, never loaded), libxml2 keeps such an
# undeclared reference in text as an entity node (refused below) but drops it
# from an attribute value without a word, so such documents are refused whole.
_ENTITY_REFERENCE = re.compile(rb"&(?!#|(?:lt|gt|amp|apos|quot);)")


# The v1.0 NVPair lists read in place of their successors
# (docs/ivr-server-xml.rst §2.1).
_DEPRECATED_LISTS = {"UDataEx": "UserData", "ExtnsEx": "Extensions"}

# The canonical document: the shape both real peers and our Encoder write for
# flat messages, in a subset of XML where lxml's reading is plain: ASCII
# printable characters only, no '&' (so no entity or character reference of
# any kind), no quote, '<' or '>' inside values (so no escaping and no
# attribute-value normalisation), no comment, CDATA, PI or whitespace between
# tags, and either no prolog or the exact declaration and external DOCTYPE
# (which is never loaded, and without references has no effect).  A document
# in this subset is read without building a tree; any other document, and any
# canonical one the fast reader is not sure of, goes to lxml.
_VALUE = r"[\x20\x21\x23-\x25\x28-\x3b\x3d\x3f-\x7e]*"
_NAME = r"[A-Za-z_]\w*"
_CANONICAL = re.compile(
    r"(?:<\?xml version=(['\"])1\.0\1 encoding=\1(?:ISO-8859-1|UTF-8)\1\?>(\n?)"
    r"<!DOCTYPE GctiMsg SYSTEM \1IServer\.dtd\1>\2)?"
    rf"<GctiMsg><CallId>({_VALUE})</CallId>"
    rf"<({_NAME})((?: {_NAME}=(?:'{_VALUE}'|\"{_VALUE}\"))*)"
    rf"(?:/>|>((?:<({_NAME})>{_VALUE}</\7>)*)</\4>)"
    r"</GctiMsg>\n?",
    re.ASCII,
)
# Flat messages are a few hundred bytes; a longer document goes to lxml, which
# also bounds the pattern's work on hostile input (and stays far below any
# libxml2 length limit).
_CANONICAL_MAX = 4096


class Decoder:
    """
    Read complete documents into messages.

    @param max_depth: deepest C{List} nesting accepted (ours; 16 by default).
    @param fast_path: read canonical documents without lxml (see
        C{_CANONICAL}); off only to compare the two readers in tests.
    """

    def __init__(self, max_depth: int = 16, fast_path: bool = True):
        self._utf8_parser = _parser("UTF-8")
        self._latin1_parser = _parser("ISO-8859-1")
        self.max_depth = max_depth
        self.fast_path = fast_path
        self._readers = {}
        self._canonical_readers = {}

    def decode(self, data: bytes) -> Message:
        if b"<!ENTITY" in data:
            raise GctiMsgError("entity declarations are not allowed (the document was not parsed)")
        if b"&" in data and b"<!DOCTYPE" in data and _ENTITY_REFERENCE.search(data):
            raise GctiMsgError("entity references are not allowed (the document was not parsed)")
        if self.fast_path and data.__class__ is bytes and len(data) <= _CANONICAL_MAX and data.isascii():
            match = _CANONICAL.fullmatch(data.decode("ascii"))
            if match is not None:
                msg = self._canonical(match)
                if msg is not None:
                    return msg
        if data.__class__ is bytes and data.startswith(_LATIN1_DECLARATIONS) and data.isascii():
            parser = self._utf8_parser  # (so it has neither a byte order mark nor a zero byte)
        else:
            if data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in data[:4]:
                raise GctiMsgError("only ISO-8859-1 and UTF-8 documents are accepted")
            declared = _DECLARED_ENCODING.match(data)
            name = declared[2].upper() if declared is not None else b"UTF-8"
            if name in _UTF8_NAMES:
                parser = self._utf8_parser
            elif name in _LATIN1_NAMES:
                parser = self._latin1_parser
            else:
                encoding = name.decode("latin-1")
                raise GctiMsgError(f"only ISO-8859-1 and UTF-8 documents are accepted, not {encoding!r}")
        try:
            root = etree.fromstring(data, parser)
        except (etree.XMLSyntaxError, ValueError) as e:  # ValueError: lxml refuses some inputs outright
            raise GctiMsgError(f"malformed XML: {e}") from None
        if root.tag != "GctiMsg":
            raise GctiMsgError(f"root element is {_tag(root)}, not GctiMsg")
        call_id = None
        body = None
        # Fast path for the shape every real document has: <CallId>text</CallId><Message .../>
        if len(root) >= 2:
            first, second = root[0], root[1]
            tag = second.tag
            if first.tag == "CallId" and not len(first) and tag.__class__ is str:
                call_id = (first.text or "").strip()
                body = second
        if body is None:
            for child in root:
                tag = child.tag
                if tag is etree.Entity:
                    raise GctiMsgError("entity references are not allowed", call_id)
                if tag.__class__ is not str:
                    continue
                if tag == "CallId" and call_id is None:
                    call_id = _text(child, call_id).strip()
                    continue
                body = child
                break
            else:
                raise GctiMsgError("GctiMsg holds no message element", call_id)
        cls = CATALOGUE.get(tag)
        if cls is None:
            raise UnknownMessage(f"unknown message {tag!r}", call_id, tag)
        read = self._readers.get(cls)
        if read is None:
            read = self._readers[cls] = self._compile(cls)
        if cls.has_call_id:
            msg = read(body, call_id, call_id)
            if call_id is None:
                raise GctiMsgError(f"{cls.element} has no CallId", None, cls.element)
            return msg
        return read(body, call_id, None)

    def _compile(self, cls):
        """
        Generate one reader function per message class: the class's fields as
        straight-line code that reads the element once and fills a new frozen
        instance through its slots (the dataclass __init__ would re-check what
        the reader has already enforced and costs a third of the decode).  The
        checks and their order are those of the DTD walk they replace:
        required attributes, then child elements in the DTD's order, then the
        envelope's CallId (in L{decode}).
        """
        name = cls.element
        env = {"new": object.__new__, "cls": cls, "GctiMsgError": GctiMsgError, "Entity": etree.Entity,
               "text": _text, "kv": self._kv, "nvpairs": self._nvpairs}
        for f in dataclasses.fields(cls):
            env[f"set_{f.name}"] = cls.__dict__[f.name].__set__
            env[f"default_{f.name}"] = None if f.default is dataclasses.MISSING else f.default
        lines = ["def read(el, call_id, cid):", "    obj = new(cls)", "    set_CallId(obj, cid)"]
        if cls.attr_names:
            lines.append("    get = dict(el.items()).get")
        for f in cls.fields:
            if f.kind != "attr":
                continue
            n = f.name
            lines.append(f"    v = get({n!r}, default_{n})")
            if f.required:
                lines.append(f"    if v is None: raise GctiMsgError("
                             f"{(name + ' lacks the required attribute ' + n)!r}, call_id, {name!r})")
            lines.append(f"    set_{n}(obj, v)")
        if cls.child_fields:
            lines += [
                "    children = {}",
                "    if len(el):",
                "        for child in el:",
                "            tag = child.tag",
                "            if tag is Entity:",
                f"                raise GctiMsgError('entity references are not allowed', call_id, {name!r})",
                "            if tag.__class__ is str and tag not in children:",
                "                children[tag] = child",
                "    cget = children.get",
            ]
        for f in cls.child_fields:
            n = f.name
            if f.kind == "sub":
                lines.append("    while True:")
                for sub in f.classes:
                    env[f"read_{sub.element}"] = self._reader(sub)
                    lines += [
                        f"        c = cget({sub.element!r})",
                        "        if c is not None:",
                        f"            set_{n}(obj, read_{sub.element}(c, call_id, None))",
                        "            break",
                    ]
                if f.required:
                    lines.append(f"        raise GctiMsgError("
                                 f"{(name + ' holds none of ' + ', '.join(c.element for c in f.classes))!r},"
                                 f" call_id, {name!r})")
                else:
                    lines += [f"        set_{n}(obj, default_{n})", "        break"]
                continue
            lines += [f"    c = cget({n!r})", "    if c is None:"]
            if f.kind == "kv" and n in _DEPRECATED_LISTS:
                lines += [
                    f"        old = cget({_DEPRECATED_LISTS[n]!r})",
                    "        if old is not None:",
                    f"            set_{n}(obj, nvpairs(old, call_id, {name!r}))",
                    "        else:",
                ]
                ind = "            "
            else:
                ind = "        "
            if f.required:
                lines.append(f"{ind}raise GctiMsgError({(name + ' lacks the required element ' + n)!r}, call_id, {name!r})")
            else:
                lines.append(f"{ind}set_{n}(obj, default_{n})")
            lines.append("    else:")
            if f.kind == "text":
                lines.append(f"        set_{n}(obj, text(c, call_id) if len(c) else c.text or '')")
            elif f.kind == "kv":
                lines.append(f"        set_{n}(obj, kv(c, call_id, {name!r}, 0))")
            elif f.kind == "value":
                lines.append(f"        set_{n}(obj, c.get('Value'))")
        lines.append("    return obj")
        exec("\n".join(lines), env)
        return env["read"]

    def _canonical(self, match):
        """
        The message of a canonical document, or None when lxml must decide
        (unknown message; attributes unknown, repeated or not in the DTD's
        order; a child element that is not a text field; a missing required
        field: whatever the tree reader would reject or read otherwise).
        """
        cls = CATALOGUE.get(match[4])
        if cls is None:
            return None
        entry = self._canonical_readers.get(cls)
        if entry is None:
            entry = self._canonical_readers[cls] = self._compile_canonical(cls)
        read, attributes, no_attributes, text_names = entry
        if read is None:
            return None
        attribute_text = match[5]
        if attribute_text:
            # the first attribute's quote; one in the other style fails the pattern
            found = attributes[attribute_text[attribute_text.index("=") + 1]].fullmatch(attribute_text)
            if found is None:
                return None
            values = found.groups()
        else:
            values = no_attributes
        texts = {}
        if match[6]:
            # "<CalledNum>3</CalledNum><DNIS>*3003</DNIS>": the first of each name counts
            for part in match[6].split("<")[1::2]:
                name, _, text = part.partition(">")
                if name not in text_names:
                    return None
                if name not in texts:
                    texts[name] = text
        call_id = match[3].strip()
        return read(values, texts, call_id if cls.has_call_id else None)

    def _compile_canonical(self, cls):
        """
        For one class: a pattern of its attributes per quote style, each
        optional, in the DTD's order (the order every writer uses), and a
        reader that takes their values and the text children straight from
        the document, with the tree reader's defaults, returning None on a
        missing required field.  Classes with a typed sub-element, a required
        list or a required value element have none.
        """
        if any(f.kind == "sub" or (f.kind in ("kv", "value") and f.required) for f in cls.fields):
            return None, None, None, None
        # _CANONICAL has checked that values hold no quote of either kind.
        attributes = {q: re.compile("".join(rf"(?: {re.escape(n)}={q}([^{q}]*){q})?" for n in cls.attr_names))
                      for q in ("'", '"')}
        env = {"new": object.__new__, "cls": cls}
        for f in dataclasses.fields(cls):
            env[f"set_{f.name}"] = cls.__dict__[f.name].__set__
            env[f"default_{f.name}"] = None if f.default is dataclasses.MISSING else f.default
        lines = ["def read(values, texts, cid):", "    obj = new(cls)", "    set_CallId(obj, cid)"]
        if cls.attr_names:
            lines.append(f"    {', '.join('a_' + n for n in cls.attr_names)}, = values")
        lines.append("    tget = texts.get")
        for f in cls.fields:
            n = f.name
            if f.kind == "attr":
                if f.required:
                    lines.append(f"    if a_{n} is None: return None")
                lines.append(f"    set_{n}(obj, a_{n} if a_{n} is not None else default_{n})")
            elif f.kind == "text":
                if f.required:
                    lines += [f"    v = tget({n!r})", "    if v is None: return None", f"    set_{n}(obj, v)"]
                else:
                    lines.append(f"    set_{n}(obj, tget({n!r}, default_{n}))")
            else:
                lines.append(f"    set_{n}(obj, default_{n})")
        lines.append("    return obj")
        exec("\n".join(lines), env)
        text_names = frozenset(f.name for f in cls.fields if f.kind == "text")
        return env["read"], attributes, (None,) * len(cls.attr_names), text_names

    def _reader(self, cls):
        read = self._readers.get(cls)
        if read is None:
            read = self._readers[cls] = self._compile(cls)
        return read

    def _kv(self, el, call_id, where, depth) -> tuple:
        if depth >= self.max_depth:
            raise GctiMsgError(f"{where} {el.tag}: lists nested deeper than {self.max_depth}", call_id, where)
        items = []
        append = items.append
        new, set_node_name, set_node_value, set_str_value = _new, _set_node_name, _set_node_value, _set_str_value
        for child in el:
            tag = child.tag
            if tag == "Node":
                get = child.get
                key = get("Name")
                type_name = get("Type")
                val = get("Val")
                if key is None or type_name is None or val is None:
                    raise GctiMsgError(f"{where} {el.tag}: Node needs Name, Type and Val", call_id, where)
                if type_name == "Str":  # the usual type: nothing to convert or check
                    node = new(Node)
                    set_node_name(node, key)
                    value = new(Str)
                    set_str_value(value, val)
                    set_node_value(node, value)
                    append(node)
                    continue
                try:
                    append(_node(key, scalar_from_text(type_name, val)))
                except ValueError as e:
                    raise GctiMsgError(f"{where} {el.tag}: {e}", call_id, where) from None
            elif tag == "List":
                key = child.get("Name")
                if key is None:
                    raise GctiMsgError(f"{where} {el.tag}: List needs Name", call_id, where)
                append(List(key, self._kv(child, call_id, where, depth + 1)))
            elif tag is etree.Entity:
                raise GctiMsgError("entity references are not allowed", call_id, where)
        return tuple(items)

    def _nvpairs(self, el, call_id, where) -> tuple:
        # Deprecated v1.0 form: <NVPair><NVName/><NVVal/></NVPair>
        # (docs/ivr-server-xml.rst §2.1)
        items = []
        for pair in el:
            if pair.tag != "NVPair":
                continue
            key = pair.find("NVName")
            val = pair.find("NVVal")
            if key is None:
                raise GctiMsgError(f"{where} {el.tag}: NVPair without NVName", call_id, where)
            items.append(Node(_text(key, call_id), Str(_text(val, call_id) if val is not None else "")))
        return tuple(items)


# User data holds many small frozen values; their generated __init__ sets
# each field through object.__setattr__, the slots' own setters cost half.
_new = object.__new__
_set_str_value = Str.__dict__["value"].__set__
_set_node_name = Node.__dict__["Name"].__set__
_set_node_value = Node.__dict__["value"].__set__


def _node(name: str, value) -> Node:
    node = _new(Node)
    _set_node_name(node, name)
    _set_node_value(node, value)
    return node


def _text(el, call_id) -> str:
    if len(el):
        for child in el:
            if child.tag is etree.Entity:
                raise GctiMsgError("entity references are not allowed", call_id)
        return "".join(el.itertext())
    return el.text or ""


def _tag(el) -> str:
    return el.tag if isinstance(el.tag, str) else repr(el.tag)
