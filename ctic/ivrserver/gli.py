# -*- test-case-name: tests.ivrserver.test_gli -*-
"""
GLI (GDI Link Interface) framing, Sans-IO.

Every frame is a 6-byte header and a payload (docs/ivr-server-xml.rst §1.2)::

    offset 0  1 byte   zero
    offset 1  1 byte   MessageType: 0 KeepAliveRequest, 1 KeepAliveResponse,
                       2 Error, 3 Data
    offset 2  2 bytes  MessageLength, big-endian = 2 + len(payload)
    offset 4  1 byte   VersionNumber, must be 2
    offset 5  1 byte   ApplicationID, must be 0

Bytes 0-1 are read together as one 16-bit type; anything above 3 means the
stream is no longer framed (we cannot trust its length), so it raises
L{FramingError}.  A wrong version or application byte leaves the length
intact: the frame is skipped and reported as a L{BadFrame}, and the link
stays up (the real server answers such a frame with a GLI Error;
docs/ivr-server-xml.rst §1.3).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ctic.framing import FrameBuffer, FramingError

__all__ = [
    "KEEP_ALIVE_REQUEST", "KEEP_ALIVE_RESPONSE", "ERROR", "DATA",
    "GLI_VERSION", "GLI_APPLICATION_ID", "HEADER_SIZE", "MAX_PAYLOAD",
    "Frame", "BadFrame", "FramingError", "GLIDecoder", "encode_frame",
    "KEEP_ALIVE_REQUEST_FRAME", "KEEP_ALIVE_RESPONSE_FRAME",
]

KEEP_ALIVE_REQUEST = 0
KEEP_ALIVE_RESPONSE = 1
ERROR = 2
DATA = 3
TYPE_NAMES = {0: "KeepAliveRequest", 1: "KeepAliveResponse", 2: "Error", 3: "Data"}

GLI_VERSION = 2
GLI_APPLICATION_ID = 0
HEADER_SIZE = 6
# The 16-bit MessageLength counts the version and application bytes, so the
# payload is at most 65535 - 2 bytes; I-Library refuses XML over 65534.
MAX_PAYLOAD = 65533

_HEADER = struct.Struct("!HHBB")


@dataclass(frozen=True, slots=True)
class Frame:
    """One complete GLI frame: its MessageType and payload."""

    type: int
    payload: bytes = b""


@dataclass(frozen=True, slots=True)
class BadFrame:
    """A frame with a good length but a wrong version or application byte; skipped."""

    reason: str
    version: int
    application_id: int
    raw: bytes


_new = object.__new__
_set_type = Frame.__dict__["type"].__set__
_set_payload = Frame.__dict__["payload"].__set__


def _frame(message_type: int, payload: bytes) -> Frame:
    # The frozen dataclass __init__ goes through object.__setattr__ per field;
    # the slots' own setters cost half as much on every received frame.
    frame = _new(Frame)
    _set_type(frame, message_type)
    _set_payload(frame, payload)
    return frame


def encode_frame(message_type: int, payload: bytes = b"", max_payload: int = MAX_PAYLOAD) -> bytes:
    """A whole frame; raises L{ValueError} when the payload is over the limit."""
    if len(payload) > max_payload:
        raise ValueError(f"GLI payload of {len(payload)} bytes exceeds the limit of {max_payload}")
    return _HEADER.pack(message_type, len(payload) + 2, GLI_VERSION, GLI_APPLICATION_ID) + payload


KEEP_ALIVE_REQUEST_FRAME = encode_frame(KEEP_ALIVE_REQUEST)
KEEP_ALIVE_RESPONSE_FRAME = encode_frame(KEEP_ALIVE_RESPONSE)


def _frame_size(header: bytes) -> int:
    message_type, length, _, _ = _HEADER.unpack(header)
    if message_type > DATA:
        raise FramingError(f"unknown GLI message type 0x{message_type:04x}: framing lost")
    if length < 2:
        raise FramingError(f"GLI MessageLength {length} is below 2", length)
    return length + 4


class GLIDecoder:
    """
    Bytes in, L{Frame}s and L{BadFrame}s out.  Partial and coalesced reads
    are the normal case.  Raises L{FramingError} when the stream cannot be
    framed any more; the caller then resets the link.

    @param max_payload: payloads larger than this fail as soon as the header
        is seen, before the body is buffered.
    """

    __slots__ = ("_buffer",)

    def __init__(self, max_payload: int = MAX_PAYLOAD):
        self._buffer = FrameBuffer(HEADER_SIZE, _frame_size, max_payload + HEADER_SIZE)

    def __len__(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list:
        try:
            raws = self._buffer.feed(data)
        except FramingError as e:
            e.frames = self._frames(e.frames)
            raise
        return self._frames(raws)

    @staticmethod
    def _frames(raws) -> list:
        out = []
        for raw in raws:
            version = raw[4]
            application_id = raw[5]
            if version != GLI_VERSION or application_id != GLI_APPLICATION_ID:
                out.append(BadFrame(
                    f"GLI header has VersionNumber {version} and ApplicationID {application_id}"
                    f" (expected {GLI_VERSION} and {GLI_APPLICATION_ID})",
                    version, application_id, raw,
                ))
                continue
            out.append(_frame(raw[1], raw[HEADER_SIZE:]))
        return out

    def clear(self) -> None:
        self._buffer.clear()
