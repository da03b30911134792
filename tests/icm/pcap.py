"""
Write a pcap of TCP conversations from the bytes each end sent, with
synthetic Ethernet/IPv4/TCP headers (handshake, one segment per write, FIN),
so tshark can decode what really crossed the loopback.
"""

from __future__ import annotations

import struct


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


class PcapWriter:
    def __init__(self):
        self.records: list[bytes] = []
        self.flows = {}
        self.time = 1_700_000_000.0

    def _packet(self, src, dst, flags, payload=b""):
        (sip, sport), (dip, dport) = src, dst
        key = (src, dst)
        seq, ack = self.flows.setdefault(key, [1000 + 7 * len(self.flows), 0])
        back = self.flows.get((dst, src))
        ack = back[0] if back else 0
        tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0)
        ip_src = bytes(int(x) for x in sip.split("."))
        ip_dst = bytes(int(x) for x in dip.split("."))
        pseudo = ip_src + ip_dst + struct.pack("!BBH", 0, 6, len(tcp) + len(payload))
        csum = _checksum(pseudo + tcp + payload)
        tcp = tcp[:16] + struct.pack("!H", csum) + tcp[18:]
        total = 20 + len(tcp) + len(payload)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0x4000, 64, 6, 0, ip_src, ip_dst)
        ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
        eth = b"\x00\x00\x00\x00\x00\x02" + b"\x00\x00\x00\x00\x00\x01" + b"\x08\x00"
        frame = eth + ip + tcp + payload
        grow = len(payload) + (1 if flags & 0x03 else 0)  # SYN and FIN take one sequence number
        self.flows[key][0] = (seq + grow) & 0xFFFFFFFF
        self.time += 0.001
        sec = int(self.time)
        usec = int((self.time - sec) * 1e6)
        self.records.append(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)

    def open(self, client, server):
        self._packet(client, server, 0x02)  # SYN
        self._packet(server, client, 0x12)  # SYN, ACK
        self._packet(client, server, 0x10)  # ACK

    def data(self, src, dst, payload):
        self._packet(src, dst, 0x18, payload)  # PSH, ACK

    def close(self, a, b):
        self._packet(a, b, 0x11)
        self._packet(b, a, 0x11)
        self._packet(a, b, 0x10)

    def write(self, path):
        with open(path, "wb") as f:
            f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
            for record in self.records:
                f.write(record)
