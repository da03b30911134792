# -*- test-case-name: tests.ivrserver.test_xmlcodec -*-
"""
Typed messages to GctiMsg documents, strictly.

Every attribute and element in the DTD's order, required fields present,
enumerated values checked, C{< > & " '} escaped, characters XML or the
chosen encoding cannot carry refused with L{EncodeError}.  Output is built
as text (it is a fixed, flat shape; a tree would only cost time).
"""

from __future__ import annotations

import re

from ctic.ivrserver.fields import Message
from ctic.ivrserver.userdata import Bin, Int, List, Node, Str

__all__ = ["EncodeError", "Encoder", "ENCODINGS", "escape_attr", "escape_text"]

ENCODINGS = ("ISO-8859-1", "UTF-8")


class EncodeError(ValueError):
    """A message cannot be written as the DTD and the encoding require."""


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
                    # UDataGet lists keys separated by ':'
                    # (docs/ivr-server-xml.rst §2.1)
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
