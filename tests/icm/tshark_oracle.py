"""
Compare what tshark's ged125 dissector reads (PDML) with the messages we
exchanged.  tshark is an outside oracle: its dissector is GPL and not
copied; we only read its output.

Known dissector quirks (docs/ged125.rst §11, S1) and what we assert instead:
- tag 33 is our CED; Wireshark names some CED-related tags differently, so
  floating fields are compared by tag number and value, not by label;
- ECC_VAR_ARRAY string lengths are read one byte off in S1; arrays are
  compared on their ECC tag only (none are sent in this flow anyway).
- Observed here, not listed in the reference: tshark 4.0's dissector flags a
  SERVICE_CONTROL message as "Malformed Packet" when a sub-type that may
  carry floating fields carries none (e.g. EVENT_REPORT ANSWER without
  CauseCode, RUN_SCRIPT_RESULT without variables), and stops before showing
  the rest of its fixed part.  GED-125 makes those floating fields optional
  (docs/ged125.rst §2.1), so we assert that exactly those messages are flagged and
  nothing else is.
"""

from __future__ import annotations

import re
import subprocess

from lxml import etree

from ctic.icm import constants as C
from ctic.icm.codec import FIELD_KINDS, STRING, ECC_NAME, ECC_VALUE, UINT, BOOL


def snake(name: str) -> str:
    """Our field names are Cisco's (InvokeID); the dissector's are ged125.invoke_id."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def read_pdml(path, port):
    out = subprocess.run(["tshark", "-r", path, "-d", f"tcp.port=={port},ged125", "-T", "pdml"],
                         capture_output=True, timeout=60)
    root = etree.fromstring(out.stdout)
    decoded = []
    for packet in root.iter("packet"):
        for proto in packet.iter("proto"):
            if proto.get("name") == "ged125":
                decoded.append([(f.get("name"), f.get("show")) for f in proto.iter("field")
                                if f.get("name", "").startswith("ged125")])
    return decoded


def split(fields):
    """(header/fixed dict, floating list) from one message's PDML fields."""
    fixed = {}
    floating = []
    i = 0
    while i < len(fields):
        name, show = fields[i]
        if name == "ged125.floating_field":
            tag = int(show)
            j = i + 1
            entry = {"tag": tag}
            while j < len(fields) and fields[j][0] != "ged125.floating_field":
                entry.setdefault(fields[j][0], fields[j][1])
                j += 1
            floating.append(entry)
            i = j
            continue
        fixed.setdefault(name, show)
        i += 1
    return fixed, floating


def as_int(text):
    return int(text, 0)


def assert_matches(case, decoded, sent):
    case.assertEqual(len(decoded), len(sent), "tshark saw a different number of GED-125 messages")
    compared_fields = 0
    for fields, msg in zip(decoded, sent):
        fixed, floating = split(fields)
        case.assertEqual(as_int(fixed["ged125.value"]), msg.type, msg.name)
        if msg.type == C.SERVICE_CONTROL:
            case.assertEqual(as_int(fixed["ged125.service_control"]), msg.subtype, msg.name)
            case.assertEqual(as_int(fixed["ged125.dialogue_id"]), msg.dialogue_id, msg.name)
            case.assertEqual(as_int(fixed["ged125.send_seq_no"]), msg.send_seq, msg.name)
        for name, value in msg.fixed.items():
            key = "ged125." + snake(name)
            if key in fixed and isinstance(value, int):
                case.assertEqual(as_int(fixed[key]), value, f"{msg.name}.{name}")
                compared_fields += 1
        ours = [(t, v) for t, v, _ in msg.floating]
        case.assertEqual([f["tag"] for f in floating], [t for t, _ in ours], msg.name)
        for entry, (tag, value) in zip(floating, ours):
            kind = FIELD_KINDS[tag]
            if kind == STRING:
                case.assertEqual(entry.get("ged125.floating_payload.strg", "").rstrip("\0"), value,
                                 f"{msg.name} tag {tag}")
            elif kind in (ECC_NAME, ECC_VALUE):
                case.assertEqual(as_int(entry["ged125.ecc_var_tag"]), value[0])
                case.assertEqual(entry["ged125.floating_payload.strg"], value[1])
            elif kind in (UINT, BOOL):
                shown = [v for k, v in entry.items() if k.startswith("ged125.") and k != "ged125.len"]
                case.assertIn(str(value), shown + [hex(value)], f"{msg.name} tag {tag}")
            compared_fields += 1
    case.assertGreater(compared_fields, len(sent))


def expert_problems(path, port) -> list[tuple[int, int]]:
    """(MessageType, sub-type or 0) of every message tshark marks malformed or warns about."""
    out = subprocess.run(["tshark", "-r", path, "-d", f"tcp.port=={port},ged125", "-Y",
                          "_ws.malformed || _ws.expert.severity >= 6291456",  # Warning and Error
                          "-T", "fields", "-e", "ged125.value", "-e", "ged125.service_control"],
                         capture_output=True, text=True, timeout=60).stdout
    problems = []
    for line in out.splitlines():
        mtype, _, sub = line.partition("\t")
        problems.append((int(mtype or 0), int(sub or 0)))
    return problems


def expected_dissector_complaints(sent) -> list[tuple[int, int]]:
    """The messages the dissector is known (observed) to flag: see the module docstring."""
    from ctic.icm.codec import SC_LAYOUTS

    return [(m.type, m.subtype) for m in sent
            if m.type == C.SERVICE_CONTROL and SC_LAYOUTS[m.subtype].floating and not m.floating]
