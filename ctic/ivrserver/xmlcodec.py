# -*- test-case-name: tests.ivrserver.test_xmlcodec -*-
"""
GctiMsg documents to and from typed messages: the strict writer
(L{ctic.ivrserver.xmlwrite}) and the tolerant, entity-safe reader
(L{ctic.ivrserver.xmlread}) under one name, with the default styles.
"""

from __future__ import annotations

from ctic.ivrserver.fields import Message
from ctic.ivrserver.xmlread import Decoder, GctiMsgError, UnknownMessage
from ctic.ivrserver.xmlwrite import ENCODINGS, EncodeError, Encoder, escape_attr, escape_text

__all__ = ["GctiMsgError", "UnknownMessage", "EncodeError", "Encoder", "Decoder", "encode", "decode",
           "ENCODINGS", "escape_attr", "escape_text"]

_default_encoder = Encoder()
_default_decoder = Decoder()


def encode(msg: Message) -> bytes:
    """Encode with the client's default style (ISO-8859-1, double quotes)."""
    return _default_encoder.encode(msg)


def decode(data: bytes) -> Message:
    return _default_decoder.decode(data)
