# -*- test-case-name: tests.sim.test_vrupg -*-
"""
Call treatment for the simulator: what ICM "does" for a dialed number, as
a list of steps (our own little language, one INI option)::

    Steps = run GetDigits CallVariable1=abc ECC:user.account=42; connect 5001 TransferHint=1

Steps, separated by C{;}; words by spaces; C{Key=Value} words are fields:

- C{run <ScriptID> [ScriptConfiguration=..] [CallVariableN=..] [ECC:<name>=..] [CED=..]}:
  RUN_SCRIPT_REQ, then wait for RUN_SCRIPT_RESULT or DIALOGUE_FAILURE_CONF.
- C{run-nowait <ScriptID> ...}: RUN_SCRIPT_REQ without waiting (queue music).
- C{cancel}: CANCEL the last RUN_SCRIPT_REQ, wait for DIALOGUE_FAILURE_CONF.
- C{delay <seconds>}
- C{connect <label> [LabelType=N] [TransferHint=1] [CallVariableN=..]}: CONNECT,
  wait for EVENT_REPORT.
- C{connect-to-resource <label>}: CONNECT_TO_RESOURCE, wait for RESOURCE_CONNECTED.
- C{temporary-connect <label>}
- C{release [cause]}: RELEASE; the dialogue ends.
- C{fail <E_NAME>}: DIALOGUE_FAILURE_EVENT; the dialogue ends.
- C{silent}: never answer again (the VRU times out).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ctic.icm import constants as C

VERBS = {"run", "run-nowait", "cancel", "delay", "connect", "connect-to-resource",
         "temporary-connect", "release", "fail", "silent"}


@dataclass
class Step:
    verb: str
    args: list = field(default_factory=list)
    fields: dict = field(default_factory=dict)

    def __str__(self):
        return " ".join([self.verb, *self.args, *(f"{k}={v}" for k, v in self.fields.items())])


def parse_steps(text: str) -> list[Step]:
    """Parse a Steps option; raises ValueError naming the bad step."""
    steps = []
    for position, part in enumerate(text.split(";"), 1):
        words = part.split()
        if not words:
            continue
        verb = words[0].lower()
        if verb not in VERBS:
            raise ValueError(f"step {position}: unknown verb {words[0]!r} (expected one of "
                             f"{', '.join(sorted(VERBS))})")
        step = Step(verb)
        for word in words[1:]:
            key, sep, value = word.partition("=")
            if sep:
                step.fields[key] = value
            else:
                step.args.append(word)
        _validate(step, position)
        steps.append(step)
    return steps


def _validate(step, position):
    need_arg = {"run", "run-nowait", "delay", "connect", "connect-to-resource", "temporary-connect",
                "fail"}
    if step.verb in need_arg and not step.args:
        raise ValueError(f"step {position}: {step.verb} needs an argument")
    if step.verb == "delay":
        try:
            float(step.args[0])
        except ValueError:
            raise ValueError(f"step {position}: delay needs seconds") from None
    if step.verb == "fail" and step.args[0] not in C.STATUS_BY_NAME:
        raise ValueError(f"step {position}: unknown error code {step.args[0]!r}")
    if step.verb == "release" and step.args and not step.args[0].isdigit():
        raise ValueError(f"step {position}: release takes a numeric cause")
    for key, value in step.fields.items():
        if key in ("LabelType", "TransferHint"):
            if not value.isdigit():
                raise ValueError(f"step {position}: {key} must be a number")
        elif key.startswith("CallVariable"):
            if key[12:] not in _CALL_VARIABLE_NUMBERS:
                raise ValueError(f"step {position}: {key!r} is not CallVariable1..CallVariable10")
        elif not (key.startswith("ECC:") or key in ("ScriptConfiguration", "CED", "ANI")):
            raise ValueError(f"step {position}: unknown field {key!r}")


_CALL_VARIABLE_NUMBERS = frozenset(str(n) for n in range(1, 11))


_parse_steps_describe = "steps separated by ';' (see ctic.sim.vrupg.treatment)"
parse_steps.describe = _parse_steps_describe


@dataclass
class Treatment:
    """Steps for a set of dialed numbers (C{"*"} matches any)."""

    name: str
    dialed_numbers: list
    steps: list

    def matches(self, dialed_number: str | None) -> bool:
        return "*" in self.dialed_numbers or (dialed_number is not None and dialed_number in self.dialed_numbers)


def pick(treatments, keys):
    """The first treatment naming one of C{keys} (DialedNumber, CorrelationID, DNIS...) exactly,
    else the first with C{*}."""
    for key in keys:
        for t in treatments:
            if key in t.dialed_numbers:
                return t
    for t in treatments:
        if "*" in t.dialed_numbers:
            return t
    return None
