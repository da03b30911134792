# -*- test-case-name: tests.test_service -*-
"""
What every role's twistd plugin shares: the C{--config} option, loading and
validating the INI file against the role's schema, and turning a
L{ctic.config.ConfigError} into a usage error twistd prints without a
traceback.

Each role has a C{tap.py} with an C{Options} subclass of L{ConfigOptions}
and a C{makeService(options)}; C{twisted/plugins/ctic_plugins.py} holds only
C{ServiceMaker} lines pointing at them.  The global reactor is imported in
C{makeService} and nowhere below it: services and protocols take the reactor
(or an C{IReactorTime}) as an argument.
"""

from __future__ import annotations

import gc

from twisted.python import usage

from ctic import config as _config


class ConfigOptions(usage.Options):
    """
    Options for a role that reads one INI file.

    Subclasses set C{schema} and C{defaultConfig}.  After parsing,
    C{self.config} is the validated L{ctic.config.Config}.
    """

    schema: _config.Schema | None = None
    defaultConfig: str | None = None

    optParameters = [
        ["config", "c", None, "INI configuration file (default: the role's file under etc/)"],
    ]

    def postOptions(self):
        path = self["config"] or self.defaultConfig
        if path is None:
            raise usage.UsageError("--config is required")
        self["config"] = path
        try:
            self.config = _config.load(path, self.schema)
            self.check(self.config)
        except _config.ConfigError as e:
            raise usage.UsageError(str(e)) from None

    def check(self, config) -> None:
        """
        A role's checks across options and files (raise L{ConfigError}); they
        run here, before the service is built, so a mistake is a usage error
        naming the file, section and option, never a traceback from twistd.
        """


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
