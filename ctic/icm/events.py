"""
GED-125 message events: the shared L{ctic.events} kinds, with the
DialogueID as the call reference.
"""

from __future__ import annotations

from ctic.events import MessageEvent, MessageEvents

__all__ = ["MessageEvent", "MessageEvents", "dialogue_ref"]

_NULL = 0xFFFFFFFF


def dialogue_ref(message):
    """The DialogueID a GED-125 message belongs to, or C{None} (session-level, or NULL)."""
    dialogue_id = getattr(message, "dialogue_id", None)
    return None if dialogue_id == _NULL else dialogue_id
