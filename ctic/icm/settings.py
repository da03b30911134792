"""
What a VRU-side GED-125 link needs to know, as plain data.  Built from the
INI file by L{ctic.connector.tap}; tests build it directly.

Every guess docs/ged125.rst marks inferred or unknown is a setting here (§12.7),
with the project's default; none of these names is Cisco's or Genesys's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ctic.icm import constants as C


@dataclass
class LinkSettings:
    # session (§5)
    min_version: int = 1  # accepted VersionNumber range [I]
    max_version: int = 99
    idle_timeout_units: str = "auto"  # auto | seconds | milliseconds (§5.3 decision)
    use_event_feed: bool = False
    use_polled_feed: bool = False
    use_call_routing: bool = False
    use_time_synch: bool = False
    use_service_control: bool = True
    service_features: int = (C.FEATURE_RUN_SCRIPT | C.FEATURE_CONNECT | C.FEATURE_CANCEL
                             | C.FEATURE_RELEASE)
    call_vars_mask: int = 0x03FF  # §4.7: all ten
    ecc_names: list[str] = field(default_factory=list)  # registered with tags 1..n
    trunk_groups: list[int] = field(default_factory=list)  # INIT_SERVICE_CTRL_TRKGRP, no trunks listed
    services: list[int] = field(default_factory=list)  # INIT_SERVICE_CTRL_SERVICE / SERVICE_STATUS
    time_zone_delta: int = 0
    vru_heartbeat: bool = False  # §5.3: VRU-initiated HEARTBEAT_REQ is [U]; off by default
    close_timeout: float = 5.0
    allowed_peers: list = field(default_factory=list)  # ip_network objects; empty = anyone
    # codec (§3.3, §1.1)
    nul_terminate: bool = True
    accept_without_nul: bool = True
    max_message: int = 65536
    max_call_variable_length: int = 40
    # dialogues and duplex (§5.5, §6)
    supersede_on_new_open: bool = True
    failover_hold: float = 10.0
    max_held_messages: int = 1000
    instruction_timeout: float = 10.0
    send_seq_start: int = 0
    max_dialogues: int = 10000

    def ecc_tags(self) -> dict[str, int]:
        return {name: n for n, name in enumerate(self.ecc_names, 1)}

    def codec(self):
        from ctic.icm.codec import Codec

        limits = {t: self.max_call_variable_length for t in range(22, 32)}
        return Codec(nul_terminate=self.nul_terminate, accept_without_nul=self.accept_without_nul,
                     max_lengths=limits, max_message=self.max_message)
