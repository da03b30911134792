# -*- test-case-name: tests.sim.test_mcp_app -*-
"""
The MCP simulator's applications: the step grammar of C{[app:NAME] steps},
the INFO bodies each data step sends, and reading the CTIC's answers.
Pure functions and frozen values: no SIP, no clock.

Grammar (ours; C{;} separates steps, C{,} separates items, words are
case-insensitive)::

    steps   = [ step *( ";" step ) ]
    step    = "wait" SECONDS                 ; pause, e.g. wait 2 or wait 0.5
            / "getdata" KEY *( "," KEY )     ; INFO Action=GetData
            / "attachdata" PAIR *( "," PAIR )      ; Action=AttachData&sub_action=Replace
            / "attachdata-add" PAIR *( "," PAIR )  ; Action=AttachData&sub_action=Add
            / "deletedata" KEY *( "," KEY )  ; Action=DeleteData
            / "deletealldata"                ; Action=DeleteAllData
            / "transfer" ( "refer" / "invite" ) TARGET
            / "hangup"                       ; BYE
    PAIR    = KEY "=" VALUE

Keys, values and targets are %-decoded (UTF-8) after the split, so
C{%3B} writes C{;}, C{%2C} C{,}, C{%3D} C{=} and C{%25} C{%}; spaces inside
them are kept (only the ends are stripped) and non-ASCII text may be written
as is: C{attachdata Note=two words%2C one comma,Name=José}.

INFO bodies are C{application/x-www-form-urlencoded;charset=utf-8}, UTF-8
%-encoded with spaces as C{%20} (gvp-rm-ctic.md §3.2: "not C{+}").  The
request shapes (C{Action} first, C{sub_action} in lower case as Composer
sends it)::

    getdata A,B        Action=GetData&A=&B=
                       (getdata-format = keynames: Keyname1=A&Keyname2=B&Action=GetData,
                        the shape gvp-rm-ctic.md §3.2 shows)
    attachdata A=1     Action=AttachData&sub_action=Replace&A=1
    attachdata-add A=1 Action=AttachData&sub_action=Add&A=1
    deletedata A       Action=DeleteData&A=
    deletealldata      Action=DeleteAllData

The CTIC answers with its own INFO, C{Result=SUCCESS&Action=UserDataResp&
Sub_Action=...&key=value...} or C{Result=<error>...}; C{Result} is compared
upper-cased, as Composer's C{ctic.js} does, and C{+} reads as a space.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from urllib.parse import parse_qsl, quote, unquote

FORM = "application/x-www-form-urlencoded;charset=utf-8"

#: step verb -> INFO (Action, sub_action) for the data steps
DATA_ACTIONS = {
    "getdata": ("GetData", None),
    "attachdata": ("AttachData", "Replace"),
    "attachdata-add": ("AttachData", "Add"),
    "deletedata": ("DeleteData", None),
    "deletealldata": ("DeleteAllData", None),
}
VERBS = ("wait", *DATA_ACTIONS, "transfer", "hangup")
TRANSFER_METHODS = ("refer", "invite")


@dataclass(frozen=True, slots=True)
class Step:
    """One step: C{verb} (one of L{VERBS}) and its arguments.

    @ivar seconds: for C{wait}.
    @ivar pairs: for data steps, C{((key, value), ...)}; C{value} is C{""} for keys alone.
    @ivar method: for C{transfer}, C{refer} or C{invite}.
    @ivar target: for C{transfer}, the user part to transfer to.
    """

    verb: str
    seconds: float = 0.0
    pairs: tuple = ()
    method: str | None = None
    target: str | None = None

    def __str__(self):
        if self.verb == "wait":
            return f"wait {self.seconds:g}"
        if self.verb == "transfer":
            return f"transfer {self.method} {self.target}"
        if self.verb in ("attachdata", "attachdata-add"):
            return f"{self.verb} " + ",".join(f"{k}={v}" for k, v in self.pairs)
        if self.pairs:
            return f"{self.verb} " + ",".join(k for k, _ in self.pairs)
        return self.verb


def _text(raw: str, what: str) -> str:
    text = unquote(raw.strip(), errors="strict")
    if not text:
        raise ValueError(f"empty {what}")
    return text


def _keys(arg: str) -> tuple:
    return tuple((_text(k, "key"), "") for k in arg.split(","))


def _pairs(arg: str) -> tuple:
    out = []
    for item in arg.split(","):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"{item.strip()!r} is not key=value")
        out.append((_text(key, "key"), unquote(value.strip(), errors="strict")))
    return tuple(out)


def parse_step(text: str) -> Step:
    """One step of the grammar, or ValueError saying what is wrong."""
    verb, _, arg = text.strip().partition(" ")
    verb = verb.lower()
    arg = arg.strip()
    if verb not in VERBS:
        raise ValueError(f"unknown step {verb!r}; expected one of {', '.join(VERBS)}")
    if verb in ("hangup", "deletealldata"):
        if arg:
            raise ValueError(f"{verb} takes no argument")
        return Step(verb)
    if not arg:
        raise ValueError(f"{verb} needs an argument")
    if verb == "wait":
        try:
            seconds = float(arg)
        except ValueError:
            raise ValueError(f"wait {arg!r}: expected seconds") from None
        if not 0 <= seconds < float("inf"):
            raise ValueError(f"wait {arg!r}: expected seconds >= 0")
        return Step(verb, seconds=seconds)
    if verb == "transfer":
        method, _, target = arg.partition(" ")
        method = method.lower()
        if method not in TRANSFER_METHODS or not target.strip():
            raise ValueError("expected transfer refer TARGET or transfer invite TARGET")
        return Step(verb, method=method, target=_text(target, "target"))
    if verb in ("attachdata", "attachdata-add"):
        return Step(verb, pairs=_pairs(arg))
    return Step(verb, pairs=_keys(arg))


def parse_steps(text: str) -> tuple[Step, ...]:
    """C{[app:NAME] steps}: the steps in order (empty text: none)."""
    if not text.strip():
        return ()
    out = []
    for position, part in enumerate(text.split(";"), 1):
        if not part.strip():
            raise ValueError(f"step {position} is empty")
        try:
            out.append(parse_step(part))
        except (ValueError, UnicodeDecodeError) as e:
            raise ValueError(f"step {position} ({part.strip()!r}): {e}") from None
    return tuple(out)


parse_steps.describe = "steps separated by ';' (see README, MCP simulator)"


# --- INFO bodies -------------------------------------------------------------------------


def form_encode(pairs) -> bytes:
    """C{k=v&...}, UTF-8 %-encoded, spaces as %20."""
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs).encode("ascii")


def form_decode(body: bytes) -> list[tuple[str, str]]:
    """
    The pairs of a form body, in order; blank values kept, C{+} read as a
    space.  Raw white space around the body (a peer's trailing CRLF) is not
    data: an encoded body carries its spaces as C{%20} or C{+}.
    """
    return parse_qsl(body.decode("utf-8", "replace").strip(" \t\r\n"), keep_blank_values=True)


def data_request(step: Step, getdata_format: str = "keys") -> bytes:
    """The INFO body a data step sends (see the module docstring)."""
    action, sub_action = DATA_ACTIONS[step.verb]
    if step.verb == "getdata" and getdata_format == "keynames":
        pairs = [(f"Keyname{n}", k) for n, (k, _) in enumerate(step.pairs, 1)]
        return form_encode([*pairs, ("Action", action)])
    head = [("Action", action)]
    if sub_action is not None:
        head.append(("sub_action", sub_action))
    return form_encode([*head, *step.pairs])


@dataclass(frozen=True, slots=True)
class DataResult:
    """
    What the CTIC answered to one data step.

    @ivar ok: C{Result} was C{SUCCESS} (case-insensitive).
    @ivar result: the C{Result} value upper-cased, or C{TIMEOUT}/C{REJECTED <status>}
        when no answer came or the INFO itself was refused.
    @ivar data: the other pairs, in order, names as sent (C{Action}, C{Sub_Action} left out).
    """

    action: str
    ok: bool
    result: str
    data: tuple = ()


_ENVELOPE = frozenset(("result", "action", "sub_action"))


def read_result(action: str, body: bytes) -> DataResult:
    """The CTIC's C{Action=UserDataResp} INFO body as a L{DataResult}."""
    pairs = form_decode(body)
    result = next((v for k, v in pairs if k.lower() == "result"), "").upper()
    data = tuple((k, v) for k, v in pairs if k.lower() not in _ENVELOPE)
    return DataResult(action, result == "SUCCESS", result or "MISSING", data)


def is_data_response(body: bytes) -> bool:
    """An INFO body that answers a data request (C{Action=UserDataResp}, or any C{Result=})."""
    pairs = form_decode(body)
    return any(k.lower() == "result" for k, _ in pairs) or \
        any(k.lower() == "action" and v.lower() == "userdataresp" for k, v in pairs)


# --- which application a call runs -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class App:
    """
    One C{[app:NAME]} section.

    @ivar dnis: DNIS values or patterns (C{*}, C{555*}) that select it.
    @ivar answer_status: 200 to answer; any other final status rejects the call with it.
    @ivar ringing: send 180 first (C{None}: the C{[mcp-sim]} setting).
    @ivar answer_delay: seconds before the answer (C{None}: the C{[mcp-sim]} setting).
    """

    name: str
    dnis: tuple = ("*",)
    steps: tuple = ()
    answer_status: int = 200
    ringing: bool | None = None
    answer_delay: float | None = None


class AppTable:
    """Applications by DNIS: an exact DNIS first, then patterns in file order."""

    def __init__(self, apps=()):
        self.apps = list(apps)
        self._exact: dict[str, App] = {}
        self._patterns: list[tuple[str, App]] = []
        for app in self.apps:
            for dnis in app.dnis:
                if any(c in dnis for c in "*?["):
                    self._patterns.append((dnis, app))
                else:
                    self._exact.setdefault(dnis, app)

    def owner(self, dnis: str) -> App | None:
        """The application that already lists this exact DNIS, if any (for the duplicate check)."""
        return self._exact.get(dnis)

    def select(self, dnis: str | None) -> App | None:
        dnis = dnis or ""
        app = self._exact.get(dnis)
        if app is not None:
            return app
        for pattern, app in self._patterns:
            if fnmatchcase(dnis, pattern):
                return app
        return None
