# -*- test-case-name: tests.ivrserver.test_sim -*-
"""
The simulator's world, built from its INI file: IVR ports (the directory),
routing points, agents, statistics and access numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ctic.ivrserver.userdata import kvlist

FRONT = "front"
BEHIND = "behind"


@dataclass(frozen=True)
class Port:
    """An IVR port (NewCall CalledNum) and what the premise T-Server would know about its calls."""

    port: str
    mode: str = BEHIND  # front: In-Front virtual switch; behind: premise switch
    dn: str | None = None  # PortDN; default: the port number
    ani: str | None = None  # None: generated
    dnis: str | None = None
    conn_id: str | None = None
    uuid: str | None = None
    other_dn: str | None = None
    user_data: tuple = ()
    ring: bool = True  # False: the premise never rings; EndCall Timeout after wait-for-ringing
    hangup_after: float = 0.0  # >0: the caller hangs up (CallStatus Released) this long after Established


@dataclass(frozen=True)
class Route:
    """A routing point: what URS answers to RouteRequest on it."""

    route_dn: str
    result: str = "route"  # route | default | timeout | error
    dest: str | None = None
    route_type: str = "Normal"
    delay: float = 0.0
    network: bool = False  # also a Network-mode route DN usable as NewCall CalledNum
    extensions: tuple = ()


@dataclass(frozen=True)
class Agent:
    """A transfer destination and how it behaves."""

    dn: str
    behaviour: str = "answer"  # answer | busy | error
    tlib_error: str = "1183"
    delay: float = 0.0


@dataclass(frozen=True)
class SimModel:
    server_version: str = "IVR Server:8.1.001.01 (ctic ivr-server-sim)"
    client_names: tuple = ()  # empty: any ClientName
    flow_control: bool = False
    init_in_progress: float = 0.0
    wait_for_ringing: float = 60.0
    router_timeout: float = 4.0
    ring_delay: float = 0.0
    answer_delay: float = 0.0
    unknown_dest: str = "answer"
    t_servers: tuple = ("TServer_IVR",)
    ports: dict = field(default_factory=dict)
    routes: dict = field(default_factory=dict)
    agents: dict = field(default_factory=dict)
    statistics: dict = field(default_factory=dict)
    access_numbers: dict = field(default_factory=dict)


def parse_pairs(text: str) -> dict:
    """C{key=value; key=value} (ours: the INI form for user data, statistics and access numbers)."""
    out = {}
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"expected key=value, got {part!r}")
        out[key.strip()] = value.strip()
    return out


def pairs(text: str) -> dict:
    return parse_pairs(text)


pairs.describe = "key=value pairs separated by ';'"


def user_data(text: str) -> tuple:
    """User data as C{key=value;...}; values that are decimal integers become Int."""
    data = {}
    for key, value in parse_pairs(text).items():
        if ":" in key:
            raise ValueError(f"user data key {key!r} contains ':'")
        data[key] = int(value) if value.lstrip("-").isdigit() else value
    return kvlist(data)


user_data.describe = "user data as key=value pairs separated by ';' (integers become Int)"
