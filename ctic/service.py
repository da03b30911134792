# -*- test-case-name: tests.rm.test_tap -*-
"""
What every role's twistd plugin shares: the C{--config}, C{--lenient},
C{--check}, C{--set} and C{--port} options (all ours), loading and validating
the INI file against the role's schema, and turning a mistake into one error
line and exit status 1 instead of a traceback or a page of usage text.

Each role has a C{tap.py} with an C{Options} subclass of L{ConfigOptions}
and a C{makeService(options)}; C{twisted/plugins/ctic_plugins.py} holds only
C{ServiceMaker} lines pointing at them.  The global reactor is imported in
C{makeService} and nowhere below it: services and protocols take the reactor
(or an C{IReactorTime}) as an argument.
"""

from __future__ import annotations

import gc
import sys
from contextlib import contextmanager

from twisted.internet import error as _error
from twisted.logger import Logger
from twisted.python import usage

from ctic import config as _config

log = Logger(namespace="ctic.service")


def parse_set(text: str):
    """C{[section]option=value} (the C{--set} flag) as a C{(section, option, value)} triple."""
    if not text.startswith("[") or "]" not in text or "=" not in text.partition("]")[2]:
        raise usage.UsageError(f"--set {text!r}: expected [section]option=value, e.g. '[sip]udp-port=5160'")
    section, _, rest = text[1:].partition("]")
    option, _, value = rest.partition("=")
    if not section.strip() or not option.strip():
        raise usage.UsageError(f"--set {text!r}: expected [section]option=value, e.g. '[sip]udp-port=5160'")
    return section.strip(), option.strip(), value.strip()


class ConfigOptions(usage.Options):
    """
    Options for a role that reads one INI file.

    Subclasses set C{schema} and C{defaultConfig}, and may override
    L{port_overrides} (what C{--port} means for the role), L{check} (checks
    across options and files) and L{summary} (what C{--check} prints).  After
    parsing, C{self.config} is the validated L{ctic.config.Config}.
    """

    schema: _config.Schema | None = None
    defaultConfig: str | None = None
    #: what --port sets, for the help text; None: the role has no --port
    portHelp: str | None = None

    optParameters = [
        ["config", "c", None, "INI configuration file (default: the role's file under etc/)"],
        ["port", None, None, "Listening port override (ours; see the role's help)"],
    ]
    optFlags = [
        ["lenient", None, "Unknown sections and options are warnings, not errors (ours)"],
        ["check", None, "Validate the configuration, print a summary and exit without starting (ours)"],
    ]

    def __init__(self):
        super().__init__()
        self["set"] = []
        if self.portHelp:
            self.docs["port"] = self.portHelp

    def opt_set(self, text):
        """[section]option=value: override one option of the file (ours; repeatable)."""
        self["set"].append(parse_set(text))

    def parseOptions(self, options=None):
        """
        Under twistd (C{self.parent} set), a mistake prints one line first,
        C{ROLE: error: ...}, and exits with status 1; twistd would print its
        whole usage text before the error.  Called directly (tests), the
        L{usage.UsageError} propagates.
        """
        if getattr(self, "parent", None) is None:
            return super().parseOptions(options)
        try:
            return super().parseOptions(options)
        except usage.UsageError as e:
            role = self.schema.role if self.schema is not None else "ctic"
            sys.stderr.write(f"{role}: error: {e}\n(twistd {role} --help lists the options)\n")
            raise SystemExit(1) from None

    def postOptions(self):
        path = self["config"] or self.defaultConfig
        if path is None:
            raise usage.UsageError("--config is required")
        self["config"] = path
        overrides = []
        if self["port"] is not None:
            if not self.portHelp:
                raise usage.UsageError("this role has no --port; use --set '[section]option=value'")
            try:
                port = _config.port(self["port"])
            except ValueError as e:
                raise usage.UsageError(f"--port {self['port']!r}: {e}") from None
            overrides += self.port_overrides(port)
        overrides += self["set"]  # --set is the more specific: it wins over --port
        try:
            self.config = _config.load(path, self.schema, strict=not self["lenient"], overrides=overrides)
            self.check(self.config)
        except _config.ConfigError as e:
            raise usage.UsageError(str(e)) from None
        if self["check"]:
            sys.stdout.write(f"{path}: configuration OK\n")
            for line in self.summary(self.config):
                sys.stdout.write(f"  {line}\n")
            raise SystemExit(0)

    def port_overrides(self, port: int) -> list:
        """The C{(section, option, value)} overrides C{--port N} stands for."""
        return []

    def check(self, config) -> None:
        """
        A role's checks across options and files (raise L{ConfigError}); they
        run here, before the service is built, so a mistake is one line
        naming the file, section and option, never a traceback from twistd.
        """

    def summary(self, config) -> list[str]:
        """What C{--check} prints: by default every section with its options set."""
        out = []
        for name, values in config.sections.items():
            if values.raw:
                out.append(f"[{name}] " + ", ".join(f"{k} = {v}" for k, v in values.raw.items()))
        return out


def sip_port_overrides(port: int) -> list:
    """C{--port N} of a SIP role: SIP on UDP and TCP port N."""
    return [("sip", "udp-port", str(port)), ("sip", "tcp-port", str(port))]


class SIPRoleOptions(ConfigOptions):
    """A role with a C{[sip]} section: C{--port N} is SIP on UDP and TCP N, and C{[sip]} is checked."""

    portHelp = "SIP port for UDP and TCP, overriding [sip] udp-port and tcp-port (ours)"

    def port_overrides(self, port):
        return sip_port_overrides(port)

    def check(self, config):
        from ctic.sip.service import check_sip

        check_sip(config["sip"], config.path)


@contextmanager
def listening(what: str):
    """
    Open a listener: a failure (port in use, address not on this host, bad
    address) ends the process at once with status 1 and one critical log line,
    C{what: cannot listen: cause}, with no traceback.  C{what} names the
    option, e.g. C{"etc/rm.ini [sip] udp-port = 5060 (UDP 127.0.0.1:5060)"}.
    """
    try:
        yield
    except (_error.CannotListenError, _error.InvalidAddressError, OSError) as e:
        cause = getattr(e, "socketError", None) or getattr(e, "message", None) or e
        if isinstance(cause, OSError) and cause.strerror:
            cause = cause.strerror
        line = f"{what}: cannot listen: {cause}"
        log.critical("{line}", line=line)
        raise SystemExit(1) from None


def tune_gc() -> None:
    """
    Make CPython's cyclic garbage collector fit a long-running server.

    Every SIP message allocates a few dozen short-lived objects, and RFC 3261
    keeps each finished transaction for up to 64*T1 (32 s), so at several
    hundred calls per second millions of live objects sit in the older
    generations.  With the default thresholds (700, 10, 10) the collector
    re-scans them so often that its pauses (hundreds of milliseconds) make
    peers retransmit.  Each role's makeService calls this once: what start-up
    built is frozen out of the collector's view, young collections run every
    200,000 allocations and older ones rarely.  Measured on the B2BUA core
    (bench/calls.py, full ramp): 450 calls/s sustained with the defaults,
    650 with (50,000, 50, 100), 850 with (200,000, 20, 100), >= 900 with the
    collector off; the price is memory held between collections.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(200_000, 20, 100)
