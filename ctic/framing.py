# -*- test-case-name: tests.test_framing_timers -*-
"""
One framing buffer for every length-prefixed binary protocol ctic speaks
(GED-125's 8-byte header, GLI's 6-byte header).  Sans-IO: bytes in, whole
frames out; partial and coalesced reads are the normal case.
"""

from __future__ import annotations

from typing import Callable


class FramingError(Exception):
    """The stream cannot be framed any more (bad or oversized length); reset the link."""

    def __init__(self, reason: str, length: int | None = None):
        self.reason = reason
        self.length = length
        # Whole frames cut from the same read before the fault: the caller
        # handles them, then resets the link.
        self.frames: list = []
        super().__init__(reason)


class FrameBuffer:
    """
    Accumulate stream bytes and cut complete frames out of them.

    @param header_size: bytes needed before the frame length is known.
    @param frame_size: given the first C{header_size} bytes, the size of the
        whole frame on the wire, header included.  May raise L{FramingError}.
    @param max_frame: frames larger than this raise L{FramingError} as soon as
        the header is seen, before their bodies are buffered.
    """

    __slots__ = ("_buf", "_header_size", "_frame_size", "_max_frame")

    def __init__(self, header_size: int, frame_size: Callable[[bytes], int], max_frame: int):
        self._buf = bytearray()
        self._header_size = header_size
        self._frame_size = frame_size
        self._max_frame = max_frame

    def __len__(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes; return the frames now complete (possibly none)."""
        buf = self._buf
        buf += data
        frames = []
        header_size = self._header_size
        start = 0
        end = len(buf)
        try:
            while end - start >= header_size:
                size = self._frame_size(bytes(buf[start:start + header_size]))
                if size < header_size:
                    raise FramingError(f"frame length {size} is shorter than its header", size)
                if size > self._max_frame:
                    raise FramingError(f"frame length {size} exceeds the limit of {self._max_frame}", size)
                if end - start < size:
                    break
                frames.append(bytes(buf[start:start + size]))
                start += size
        except FramingError as e:
            del buf[:start]
            e.frames = frames
            raise
        if start:
            del buf[:start]
        return frames

    def clear(self) -> None:
        """Drop everything buffered (after a reset)."""
        self._buf.clear()
