"""
ICM mode of the CTI Connector: the tenant listeners that VRU-PGs connect to,
holding their GED-125 sessions.  Per-call logic (NEW_CALL or
REQUEST_INSTRUCTION, pre-routing with C{[ICMC] enablePreRouting} and
C{DNISIndicator}, scripts to the media server) builds on
L{ctic.icm.listener.ICMTenant} and L{ctic.icm.dialogue.CallLogic}.
"""

from __future__ import annotations

from twisted.application import service

from ctic.icm.events import MessageEvents
from ctic.icm.listener import TenantService
from ctic.icm.settings import LinkSettings
from ctic.icm import constants as C


def link_settings(config, tenant) -> LinkSettings:
    """The [ICMC] section plus one tenant's section, as L{LinkSettings}."""
    icmc = config["ICMC"]
    features = 0
    for name in icmc["ServiceFeatures"]:
        features |= C.FEATURE_BY_NAME[name]
    return LinkSettings(
        min_version=icmc["MinVersion"], max_version=icmc["MaxVersion"],
        idle_timeout_units=icmc["IdleTimeoutUnits"], use_call_routing=False,
        service_features=features, call_vars_mask=icmc["CallVarsMask"],
        ecc_names=icmc["ECCVariables"], trunk_groups=icmc["TrunkGroups"], services=icmc["Services"],
        vru_heartbeat=icmc["VRUHeartbeat"], nul_terminate=icmc["NulTerminateStrings"],
        accept_without_nul=icmc["AcceptStringsWithoutNul"], max_message=icmc["MaxMessageSize"],
        max_call_variable_length=icmc["MaxCallVariableLength"],
        supersede_on_new_open=icmc["SupersedeOnNewOpen"], failover_hold=icmc["FailoverHold"],
        max_held_messages=icmc["MaxHeldMessages"], instruction_timeout=icmc["InstructionTimeout"],
        send_seq_start=icmc["SendSeqNoStart"], max_dialogues=icmc["MaxDialogues"],
        allowed_peers=tenant["AllowedPeers"],
    )


class ICMConnector(service.MultiService):
    """The CTIC in ICM mode: one L{TenantService} per C{[TenantN]} section."""

    def __init__(self, config, reactor):
        super().__init__()
        self.setName("ctic-icm")
        self.config = config
        self.events = MessageEvents()
        self.tenants = {}
        for section in config.matching("Tenant*"):
            settings = link_settings(config, section)
            tenant = TenantService(section.name, section["Ports"], section["Address"], settings, reactor,
                                   self.events, reactor=reactor)
            tenant.setServiceParent(self)
            self.tenants[section.name] = tenant.tenant
