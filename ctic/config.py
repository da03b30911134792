# -*- test-case-name: tests.test_config -*-
"""
INI configuration: schemas, typed values, defaults in one place, and errors
that name the file, section, option and bad value.

Every role describes its configuration as a L{Schema}: a list of L{Section}s,
each a list of L{Option}s.  An option carries its type (a converter from the
INI text), its default, whether the name is a vendor's (Genesys or Cisco, as
the references document it) or ours, and a one-line description.  The README
table of options is generated from the same schemas
(C{python -m ctic.config --table}), so defaults live in exactly one place.

Sections may be I{patterns}: C{Section("Tenant*", ...)} matches
C{[Tenant1]}, C{[Tenant2]} and so on, the way Genesys applications name
per-tenant sections.

An unknown section or option is an error by default, naming the closest
known name ("did you mean udp-port?"): a typo that silently falls back to a
default (SIP on 5060, no MCP group, every call 503) is worse than a start that
stops.  C{strict=False} (the roles' C{--lenient} flag) makes them warnings.  A
bad I{value} always raises L{ConfigError}, because running with a value nobody
intended is worse than not starting.

I{Overrides} (the roles' C{--set} and C{--port} flags) replace or add option
text before validation, so they are checked exactly like the file.
"""

from __future__ import annotations

import configparser
import difflib
import fnmatch
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from twisted.logger import Logger

log = Logger(namespace="ctic.config")


class ConfigError(Exception):
    """
    A configuration value is wrong.

    @ivar path: the file, or C{"<string>"}.
    @ivar section: the section name, or C{None} when the file itself is bad.
    @ivar option: the option name, or C{None}.
    @ivar value: the offending text, or C{None}.
    @ivar reason: what is wrong with it.
    """

    def __init__(self, reason, path=None, section=None, option=None, value=None):
        self.reason = reason
        self.path = path
        self.section = section
        self.option = option
        self.value = value
        super().__init__(str(self))

    def __str__(self):
        where = self.path or "<config>"
        if self.section is not None:
            where += f" [{self.section}]"
        if self.option is not None:
            where += f" {self.option}"
        if self.value is not None:
            where += f" = {self.value!r}"
        return f"{where}: {self.reason}"


# --- value types -----------------------------------------------------------
# A type is a callable taking the stripped INI text and returning the value,
# raising ValueError with a human reason.  Each has a ``describe`` attribute
# used in the README table.


def _described(text):
    def deco(fn):
        fn.describe = text
        return fn

    return deco


@_described("text")
def string(text: str) -> str:
    return text


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@_described("boolean (true/false, yes/no, 1/0, on/off)")
def boolean(text: str) -> bool:
    low = text.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError("expected true/false, yes/no, 1/0 or on/off")


def integer(minimum: int | None = None, maximum: int | None = None):
    """An integer within optional bounds."""

    def convert(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise ValueError("expected an integer") from None
        if minimum is not None and value < minimum:
            raise ValueError(f"must be at least {minimum}")
        if maximum is not None and value > maximum:
            raise ValueError(f"must be at most {maximum}")
        return value

    bounds = ""
    if minimum is not None or maximum is not None:
        bounds = f" ({'' if minimum is None else minimum}..{'' if maximum is None else maximum})"
    convert.describe = "integer" + bounds
    return convert


def number(minimum: float | None = None, maximum: float | None = None):
    """A decimal number (seconds, ratios) within optional bounds."""

    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise ValueError("expected a number") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("expected a finite number")
        if minimum is not None and value < minimum:
            raise ValueError(f"must be at least {minimum}")
        if maximum is not None and value > maximum:
            raise ValueError(f"must be at most {maximum}")
        return value

    convert.describe = "number"
    return convert


def choice(*choices: str, case: bool = False):
    """One of a fixed set of words; returned as written in C{choices}."""
    table = {(c if case else c.lower()): c for c in choices}

    def convert(text: str) -> str:
        key = text if case else text.lower()
        try:
            return table[key]
        except KeyError:
            raise ValueError("expected one of " + ", ".join(choices)) from None

    convert.describe = "one of " + ", ".join(choices)
    return convert


def listof(item: Callable[[str], Any], separator: str = ","):
    """A separated list; empty text is an empty list."""

    def convert(text: str) -> list:
        if not text.strip():
            return []
        out = []
        for position, part in enumerate(text.split(separator), 1):
            part = part.strip()
            if not part:
                raise ValueError(f"item {position} is empty")
            try:
                out.append(item(part))
            except ValueError as e:
                raise ValueError(f"item {position} ({part!r}): {e}") from None
        return out

    convert.describe = f"list of {getattr(item, 'describe', 'values')} separated by '{separator}'"
    return convert


@_described("TCP/UDP port (1..65535)")
def port(text: str) -> int:
    return integer(1, 65535)(text)


@_described("IP address")
def ip_address(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError("expected an IPv4 or IPv6 address") from None


@_described("host:port (IPv6 as [addr]:port)")
def hostport(text: str) -> tuple[str, int]:
    host, sep, p = text.rpartition(":")
    if not sep or not host:
        raise ValueError("expected host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, port(p)


@_described("IP network or address (CIDR allowed)")
def network(text: str):
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError("expected an IP address or network such as 10.0.0.0/8") from None


# --- schema ----------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """
    One option: name, type, default, and whose name it is.

    @ivar vendor: C{"genesys"} or C{"cisco"} when the name is the vendor's own
        (as the vendor documents it; see docs/), C{None} when it is ctic's.
    @ivar required: the option must be present (C{default} is then unused).
    """

    name: str
    type: Callable[[str], Any] = string
    default: Any = None
    doc: str = ""
    vendor: str | None = None
    required: bool = False


@dataclass(frozen=True)
class Section:
    """A section (or a pattern of sections such as C{Tenant*})."""

    name: str
    options: tuple[Option, ...]
    doc: str = ""
    required: bool = False

    @property
    def is_pattern(self) -> bool:
        return any(c in self.name for c in "*?[")

    def option(self, name: str) -> Option | None:
        for opt in self.options:
            if opt.name.lower() == name.lower():
                return opt
        return None


@dataclass(frozen=True)
class Schema:
    """The sections one role reads."""

    role: str
    sections: tuple[Section, ...]

    def section_for(self, name: str) -> Section | None:
        for sec in self.sections:
            if not sec.is_pattern and sec.name.lower() == name.lower():
                return sec
        for sec in self.sections:
            if sec.is_pattern and fnmatch.fnmatch(name.lower(), sec.name.lower()):
                return sec
        return None


class SectionValues(Mapping):
    """
    The typed values of one section: a read-only mapping from option name (as
    the schema spells it; lookups are case-insensitive) to value, with
    defaults filled in.
    """

    def __init__(self, name: str, values: dict[str, Any], raw: dict[str, str]):
        self.name = name
        self._values = values
        self._lower = {k.lower(): k for k in values}
        self.raw = raw

    def __getitem__(self, key):
        return self._values[self._lower.get(key.lower(), key)]

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)

    def __repr__(self):
        return f"<SectionValues [{self.name}] {self._values!r}>"


@dataclass
class Config:
    """
    A loaded, validated configuration.

    @ivar sections: section name (as written in the file) to L{SectionValues};
        fixed sections missing from the file are present with defaults.
    """

    path: str
    schema: Schema
    sections: dict[str, SectionValues] = field(default_factory=dict)

    def __getitem__(self, section: str) -> SectionValues:
        for name, values in self.sections.items():
            if name.lower() == section.lower():
                return values
        raise KeyError(section)

    def __contains__(self, section: str) -> bool:
        return any(name.lower() == section.lower() for name in self.sections)

    def matching(self, pattern: str) -> list[SectionValues]:
        """The sections whose names match a pattern, in file order."""
        return [v for n, v in self.sections.items() if fnmatch.fnmatch(n.lower(), pattern.lower())]

    def error(self, reason, section=None, option=None, value=None) -> ConfigError:
        """A L{ConfigError} located in this file, for cross-option checks."""
        return ConfigError(reason, self.path, section, option, value)


def _closest(name: str, candidates: Iterable[str]) -> str | None:
    candidates = list(candidates)
    lowered = {c.lower(): c for c in candidates}
    hits = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[hits[0]] if hits else None


def _section_candidates(schema: Schema, name: str) -> list[str]:
    """Names to suggest for an unknown section: fixed ones, and each pattern filled in from C{name}."""
    out = []
    for sec in schema.sections:
        if not sec.is_pattern:
            out.append(sec.name)
            continue
        prefix = re.split(r"[*?\[]", sec.name, maxsplit=1)[0]
        if prefix.endswith(":") and ":" in name:
            out.append(prefix + name.split(":", 1)[1])  # [mcp-grup:mcp] -> [mcp-group:mcp]
        else:
            out.append(prefix + (re.search(r"\d*$", name).group() or "N"))  # [Tenat1] -> [Tenant1]
    return out


def _parser() -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(
        delimiters=("=",),
        comment_prefixes=("#", ";"),
        inline_comment_prefixes=None,
        strict=True,
        empty_lines_in_values=False,
        interpolation=None,
    )
    parser.optionxform = str  # Genesys names are case-sensitive on display
    return parser


def load(path: str, schema: Schema, strict: bool = True, overrides=()) -> Config:
    """Read and validate one INI file (see L{loads} for C{strict} and C{overrides})."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(f"cannot read: {e.strerror}", path) from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"not UTF-8 text (byte {e.start})", path) from None
    return loads(text, schema, path, strict, overrides)


def _unknown(strict, candidates, path, section, option=None):
    """An unknown section or option: a L{ConfigError} when strict, else a logged warning."""
    name = section if option is None else option
    closest = _closest(name, candidates)
    hint = "" if closest is None else (f"; did you mean [{closest}]?" if option is None else f"; did you mean {closest}?")
    error = ConfigError(f"unknown {'section' if option is None else 'option'}{hint}", path, section, option)
    if strict:
        raise error
    log.warn("{error} (ignored: lenient)", error=str(error), path=path, section=section, option=option,
             closest=closest)


def loads(text: str, schema: Schema, path: str = "<string>", strict: bool = True, overrides=()) -> Config:
    """
    Validate INI text against a schema.

    @param strict: unknown sections and options are errors (else warnings).
    @param overrides: C{(section, option, value)} triples applied to the text
        before validation; C{value} may be a callable taking the option's
        current text (or C{None}) and returning the new text.
    """
    parser = _parser()
    try:
        parser.read_string(text, source=path)
    except configparser.DuplicateSectionError as e:
        raise ConfigError("section appears twice", path, e.section) from None
    except configparser.DuplicateOptionError as e:
        raise ConfigError("option appears twice", path, e.section, e.option) from None
    except configparser.Error as e:
        raise ConfigError(f"not a valid INI file: {e.message.splitlines()[0]}", path) from None
    for section, option, value in overrides:
        if not parser.has_section(section):
            parser.add_section(section)
        if callable(value):
            value = value(parser.get(section, option, fallback=None))
        parser.set(section, option, value)

    config = Config(path, schema)
    for name in parser.sections():
        sec = schema.section_for(name)
        if sec is None:
            _unknown(strict, _section_candidates(schema, name), path, name)
            continue
        config.sections[name] = _section_values(path, name, sec, dict(parser.items(name)), strict)

    for sec in schema.sections:
        if sec.is_pattern:
            if sec.required and not config.matching(sec.name):
                raise ConfigError(f"at least one section [{sec.name}] is required", path)
            continue
        if sec.name not in config:
            if sec.required:
                raise ConfigError("section is required", path, sec.name)
            config.sections[sec.name] = _section_values(path, sec.name, sec, {})
    return config


def _section_values(path, name, sec: Section, raw: dict[str, str], strict: bool = True) -> SectionValues:
    values: dict[str, Any] = {}
    seen = set()
    for key, text in raw.items():
        opt = sec.option(key)
        if opt is None:
            _unknown(strict, [o.name for o in sec.options], path, name, key)
            continue
        seen.add(opt.name)
        try:
            values[opt.name] = opt.type(text.strip())
        except ValueError as e:
            raise ConfigError(str(e), path, name, key, text.strip()) from None
    for opt in sec.options:
        if opt.name in seen:
            continue
        if opt.required:
            raise ConfigError("option is required", path, name, opt.name)
        values[opt.name] = opt.default
    return SectionValues(name, values, raw)


# --- documentation ---------------------------------------------------------


def rst_table(schemas: Iterable[Schema]) -> str:
    """The option reference's table (reStructuredText list-table, docs/options.rst)."""
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "",
        "   * - Role / section",
        "     - Option",
        "     - Whose name",
        "     - Type",
        "     - Default",
        "     - Meaning",
    ]
    for schema in schemas:
        for sec in schema.sections:
            for opt in sec.options:
                default = "(required)" if opt.required else ("" if opt.default is None else repr(opt.default))
                lines += [
                    f"   * - {schema.role} [{sec.name}]",
                    f"     - ``{opt.name}``",
                    f"     - {opt.vendor.capitalize() if opt.vendor else 'ours'}",
                    f"     - {getattr(opt.type, 'describe', 'text')}",
                    f"     - {default}",
                    f"     - {opt.doc}",
                ]
    return "\n".join(lines) + "\n"


def all_schemas() -> list[Schema]:
    """Every role's schema, imported lazily so one broken role does not hide the rest."""
    import importlib

    out = []
    for module in SCHEMA_MODULES:
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        out.append(mod.SCHEMA)
    return out


# Modules that define a module-level SCHEMA; add a role here when it lands.
SCHEMA_MODULES = [
    "ctic.rm.tap",
    "ctic.connector.tap",
    "ctic.sim.ivrserver.tap",
    "ctic.sim.vrupg.tap",
    "ctic.sim.mcp.tap",
]


if __name__ == "__main__":  # pragma: no cover - documentation helper
    import sys

    if sys.argv[1:] == ["--table"]:
        sys.stdout.write(rst_table(all_schemas()))
    elif sys.argv[1:2] == ["--write"] and len(sys.argv) == 3:
        # Rewrite the table between the markers of a reStructuredText file.
        path = sys.argv[2]
        with open(path, encoding="utf-8") as f:
            text = f.read()
        begin, end = ".. BEGIN OPTIONS TABLE\n", ".. END OPTIONS TABLE"
        head, tail = text[: text.index(begin) + len(begin)], text[text.index(end):]
        with open(path, "w", encoding="utf-8") as f:
            f.write(head + "\n" + rst_table(all_schemas()) + "\n" + tail)
    else:
        sys.stderr.write("usage: python -m ctic.config --table | --write docs/options.rst\n")
        sys.exit(2)
