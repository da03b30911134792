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


def _no_fast_path(msg):
    return None


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
        self._fast = {}
        q = quote
        # the text around user-data items, for the fast path
        self._kv_markup = (
            f"<Node Name={q}", {kind: f"{q} Type={q}{kind.type_name}{q} Val={q}" for kind in (Str, Int, Bin)},
            f"{q}/>", f"<List Name={q}", f"{q}>",
        )
        sep = "\n" if newlines else ""
        self._prolog = (
            f"<?xml version={q}1.0{q} encoding={q}{self.encoding}{q}?>{sep}"
            f"<!DOCTYPE GctiMsg SYSTEM {q}{escape_attr(dtd_file)}{q}>{sep}<GctiMsg>"
        )

    def encode(self, msg: Message) -> bytes:
        cls = msg.__class__
        fast = self._fast.get(cls)
        if fast is None:
            fast = self._fast[cls] = self._compile_fast(cls)
        try:
            text = fast(msg)
        except Exception:  # the checked path below raises the precise error
            text = None
        if text is None:
            text = self._checked_text(msg)
        try:
            return text.encode(self.encoding)
        except UnicodeEncodeError as e:
            raise EncodeError(
                f"{msg.element} has a character {self.encoding} cannot carry: {e.object[e.start:e.end]!r}"
            ) from None

    def _checked_text(self, msg: Message) -> str:
        """The document, checking field by field; raises L{EncodeError} at the first fault."""
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
        return "".join(out)

    def _compile_fast(self, cls):
        """
        Generate the common-case writer for one message class: every value
        already text with nothing to escape and nothing the DTD forbids.  It
        gathers the scalar values as it writes them and checks them all with
        one search at the end instead of one call per field.  On anything
        unusual it returns None (or raises) and L{encode} takes the checked
        path, which reports the fault exactly as before.
        """
        if not (isinstance(cls, type) and issubclass(cls, Message)) or any(f.kind == "sub" for f in cls.fields):
            return _no_fast_path
        q = self.quote
        name = cls.element
        env = {"any_special": _ANY.search, "self": self}
        lines = ["def fast(msg):"]
        if cls.has_call_id:
            lines += [
                "    c = msg.CallId",
                "    if c is None or not c or c != c.strip(): return None",
                "    vals = [c]",
                f"    out = [{(self._prolog + '<CallId>')!r}, c, {('</CallId><' + name)!r}]",
            ]
        else:
            lines += ["    vals = []", f"    out = [{(self._prolog + '<' + name)!r}]"]
        present = {}
        for f in cls.fields:
            n = f.name
            lines.append(f"    v_{n} = msg.{n}")
            present[n] = f"v_{n} is not None" if f.kind != "kv" else f"v_{n}"
            if f.required:
                lines.append(f"    if not ({present[n]}): return None")
            if f.choices is not None:
                env[f"choices_{n}"] = frozenset(f.choices)
                lines.append(f"    if {present[n]} and v_{n} not in choices_{n}: return None")
        children = [f for f in cls.fields if f.kind != "attr"]
        writes = []
        for f in cls.fields:
            n = f.name
            if f.kind == "attr":
                writes.append((f, [f"out += ({(' ' + n + '=' + q)!r}, v_{n}, {q!r})", f"vals.append(v_{n})"]))
        if children:
            writes.append((None, ["start = len(out)"]))
        for f in children:
            n = f.name
            if f.kind == "text":
                write = [f"out += ({('<' + n + '>')!r}, v_{n}, {('</' + n + '>')!r})", f"vals.append(v_{n})"]
            elif f.kind == "value":
                write = [f"out += ({('<' + n + ' Value=' + q)!r}, v_{n}, {(q + '/>')!r})", f"vals.append(v_{n})"]
            else:
                write = [f"out.append({('<' + n + '>')!r})",
                         f"if not self._kv_unchecked(v_{n}, out, vals, {'UDataEx' in name + ' ' + n}): return None",
                         f"out.append({('</' + n + '>')!r})"]
            writes.append((f, write))
        for f, write in writes:
            if f is None or f.required:
                lines += ["    " + w for w in write]
            else:
                lines.append(f"    if {present[f.name]}:")
                lines += ["        " + w for w in write]
        if children:
            lines += [
                "    if len(out) > start:",
                "        out.insert(start, '>')",
                f"        out.append({('</' + name + '></GctiMsg>')!r})",
                "    else:",
                "        out.append('/></GctiMsg>')",
            ]
        else:
            lines.append("    out.append('/></GctiMsg>')")
        lines += [
            "    if any_special(''.join(vals)) is not None: return None",
            "    return ''.join(out)",
        ]
        exec("\n".join(lines), env)
        return env["fast"]

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


    def _kv_unchecked(self, items, out: list, vals: list, keys_in_udata: bool) -> bool:
        """
        L{_kv} for the fast path: write the items of exactly the usual
        classes, gathering their text into C{vals} for the one check at the
        end; False (or an exception) when the checked writer must decide.
        """
        node_open, node_type, node_close, list_open, list_close = self._kv_markup
        for item in items:
            cls = item.__class__
            if cls is Node:
                name = item.Name
                value = item.value
                kind = value.__class__
                if kind is Str:
                    text = value.value
                elif kind is Int or kind is Bin:
                    text = value.text()
                else:
                    return False
                if keys_in_udata and ":" in name:
                    return False
                out += (node_open, name, node_type[kind], text, node_close)
                vals += (name, text)
            elif cls is List:
                if not item.items:
                    return False
                out += (list_open, item.Name, list_close)
                vals.append(item.Name)
                if not self._kv_unchecked(item.items, out, vals, keys_in_udata):
                    return False
                out.append("</List>")
            else:
                return False
        return True


# --- input -----------------------------------------------------------------


def _parser(encoding: str | None = None) -> etree.XMLParser:
    # Never load the external IServer.dtd, never fetch anything, never expand
    # an entity (reference §1.4, §10 item 3).
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
        huge_tree=False, remove_comments=True, remove_pis=True, recover=False, encoding=encoding,
    )


# The declarations both real peers write (reference §1.4).  An ASCII document
# reads the same in ISO-8859-1 and UTF-8, and libxml2 reads UTF-8 without a
# conversion pass, so such documents go to a parser told they are UTF-8.
_LATIN1_DECLARATIONS = (
    b"<?xml version='1.0' encoding='ISO-8859-1'?>",
    b'<?xml version="1.0" encoding="ISO-8859-1"?>',
)


# The v1.0 NVPair lists read in place of their successors (reference §2.1).
_DEPRECATED_LISTS = {"UDataEx": "UserData", "ExtnsEx": "Extensions"}


class Decoder:
    """
    Read complete documents into messages.

    @param max_depth: deepest C{List} nesting accepted (ours; 16 by default).
    """

    def __init__(self, max_depth: int = 16):
        self._parser = _parser()
        self._ascii_parser = _parser("UTF-8")
        self.max_depth = max_depth
        self._readers = {}

    def decode(self, data: bytes) -> Message:
        if b"<!ENTITY" in data:
            raise GctiMsgError("entity declarations are not allowed (the document was not parsed)")
        if data.__class__ is bytes and data.startswith(_LATIN1_DECLARATIONS) and data.isascii():
            parser = self._ascii_parser  # (so it has neither a byte order mark nor a zero byte)
        else:
            if data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in data[:4]:
                raise GctiMsgError("only ISO-8859-1 and UTF-8 documents are accepted")
            parser = self._parser
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
        # Deprecated v1.0 form: <NVPair><NVName/><NVVal/></NVPair> (reference §2.1)
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


_default_encoder = Encoder()
_default_decoder = Decoder()


def encode(msg: Message) -> bytes:
    """Encode with the client's default style (ISO-8859-1, double quotes)."""
    return _default_encoder.encode(msg)


def decode(data: bytes) -> Message:
    return _default_decoder.decode(data)
