# -*- test-case-name: tests.sip.test_transport -*-
"""
The C{[sip]} section every SIP role shares (RM, CTIC, MCP simulator), and the
Twisted service that opens its listeners.  All names here are ours: the
references document no Genesys option names for RM transports.
"""

from __future__ import annotations

from twisted.application import service
from twisted.logger import Logger

from ctic.config import ConfigError, Option, Section, integer, ip_address, number, string
from ctic.sip.parser import Limits
from ctic.sip.transport import TransportConfig, TransportLayer

log = Logger(namespace="ctic.sip.service")


def optional_port(text: str):
    """A port number, 0 for any free port, or C{off} to disable."""
    if text.lower() in ("", "off", "none", "no"):
        return None
    return integer(0, 65535)(text)


optional_port.describe = "port (0 = any free port) or off"


def sip_section(udp_port=5060, tcp_port=5060, tls_port=None) -> Section:
    """The C{[sip]} section with a role's own default ports."""
    return Section(
        "sip",
        (
            Option("listen-address", ip_address, "127.0.0.1", "address the SIP listeners bind to (an IP address of this host)"),
            Option("advertised-address", string, None,
                   "address written in Via/Contact/Record-Route (default: listen-address)"),
            Option("udp-port", optional_port, udp_port, "UDP listener port, or off"),
            Option("tcp-port", optional_port, tcp_port, "TCP listener port, or off"),
            Option("tls-port", optional_port, tls_port, "TLS listener port, or off"),
            Option("tls-certificate", string, None, "PEM certificate file for TLS"),
            Option("tls-private-key", string, None, "PEM private key file for TLS (default: the certificate file)"),
            Option("tls-ca", string, None, "PEM CA bundle to verify TLS peers (off: peers are not verified)"),
            Option("max-message-size", integer(512, 1048576), 65535,
                   "largest SIP message accepted, bytes (larger: 513)"),
            Option("max-headers", integer(8, 4096), 128, "most header fields in one message (more: 400)"),
            Option("tcp-idle-timeout", number(1), 300.0, "seconds before an idle TCP/TLS connection is closed"),
            Option("max-connections", integer(1), 1024,
                   "most TCP/TLS connections open at once; past it the slowest inbound one is closed"),
            Option("max-connections-per-source", integer(1), 128,
                   "most inbound TCP/TLS connections from one source address; past it that source's slowest is closed"),
            Option("tcp-message-deadline", number(0.1), 5.0,
                   "seconds a TCP/TLS peer has to send a whole message once its first byte arrives"),
            Option("udp-buffer", integer(0), 4194304,
                   "UDP socket receive/send buffer, bytes (0: the system default; capped by net.core.rmem_max)"),
            Option("max-transactions", integer(1), 100000,
                   "most SIP transactions in progress; beyond it new requests get 503 with Retry-After"),
            Option("t1", number(0.01), 0.5, "RFC 3261 T1 (RTT estimate), seconds"),
            Option("t2", number(0.01), 4.0, "RFC 3261 T2 (maximum retransmit interval), seconds"),
            Option("t4", number(0.01), 5.0, "RFC 3261 T4 (maximum message lifetime), seconds"),
        ),
        doc="SIP transports (ours)",
    )


def check_sip(values, path="<config>") -> None:
    """The [sip] checks across options and files, for a role's Options.check."""
    if values["tls-port"] is not None and not values["tls-certificate"]:
        raise ConfigError("tls-port is set but tls-certificate is not", path, "sip", "tls-port")
    tls_contexts(values, path)  # reads and checks the certificate, key and CA files


def listeners_summary(values) -> str:
    """The [sip] listeners in one line, for a role's C{--check} summary."""
    ports = ", ".join(f"{kind} {values['listen-address']}:{values[option]}" for kind, option in
                      (("UDP", "udp-port"), ("TCP", "tcp-port"), ("TLS", "tls-port")) if values[option] is not None)
    return f"SIP listeners: {ports or 'none'}"


def transport_config(values) -> TransportConfig:
    return TransportConfig(
        limits=Limits(max_message_size=values["max-message-size"], max_headers=values["max-headers"]),
        tcp_idle_timeout=values["tcp-idle-timeout"],
        max_connections=values["max-connections"],
        max_connections_per_source=values["max-connections-per-source"],
        tcp_message_deadline=values["tcp-message-deadline"],
        udp_buffer=values["udp-buffer"],
        udp_max_datagram=max(values["max-message-size"], 65535),
    )


_PEM_END = b"-----END CERTIFICATE-----"


def _pem_certificates(data: bytes) -> list[bytes]:
    """Each certificate of a PEM bundle (Certificate.loadPEM reads only the first)."""
    return [part + _PEM_END for part in data.split(_PEM_END)[:-1]]


def tls_contexts(values, path="<config>"):
    """(server context, client context) from the [sip] TLS options, or (None, None)."""
    cert = values["tls-certificate"]
    if not cert:
        return None, None
    from twisted.internet import ssl

    key = values["tls-private-key"] or cert

    def read(option, filename):
        try:
            with open(filename, "rb") as f:
                return f.read()
        except OSError as e:
            raise ConfigError(f"cannot read TLS file: {e.strerror}", path, "sip", option, filename) from None

    cert_pem = read("tls-certificate", cert)
    key_pem = read("tls-private-key" if values["tls-private-key"] else "tls-certificate", key)
    ca_pem = read("tls-ca", values["tls-ca"]) if values["tls-ca"] else None
    try:
        private = ssl.PrivateCertificate.loadPEM(cert_pem + b"\n" + key_pem)
    except Exception as e:
        raise ConfigError(f"bad TLS certificate or private key: {e}", path, "sip", "tls-certificate", cert) from None
    cas = []
    if ca_pem is not None:
        try:
            cas = [ssl.Certificate.loadPEM(pem) for pem in _pem_certificates(ca_pem)]
        except Exception as e:
            raise ConfigError(f"bad CA certificate: {e}", path, "sip", "tls-ca", values["tls-ca"]) from None
        if not cas:
            raise ConfigError("no certificate in the CA file", path, "sip", "tls-ca", values["tls-ca"])
    server = private.options(*cas) if cas else private.options()
    client = ssl.CertificateOptions(
        privateKey=private.privateKey.original,
        certificate=private.original,
        verify=bool(cas),
        caCerts=[c.original for c in cas] or None,
    )
    return server, client


class SIPTransportService(service.Service):
    """Opens the [sip] listeners on start and closes them on stop."""

    name = "sip-transport"

    def __init__(self, layer: TransportLayer, values, tls_server_context=None, path="<config>"):
        self.layer = layer
        self.values = values
        self.tls_server_context = tls_server_context
        self.path = path

    def startService(self):
        """Open each listener; one that cannot be opened ends the process (L{listening})."""
        from ctic.service import listening

        super().startService()
        v = self.values
        iface = v["listen-address"]
        if v["tls-port"] is not None and self.tls_server_context is None:
            raise ConfigError("tls-port is set but tls-certificate is not", None, "sip", "tls-port")
        for option, kind, listen in (("udp-port", "UDP", self.layer.listen_udp),
                                     ("tcp-port", "TCP", self.layer.listen_tcp),
                                     ("tls-port", "TLS", self._listen_tls)):
            if v[option] is not None:
                with listening(f"{self.path} [sip] {option} = {v[option]} ({kind} {iface}:{v[option]})"):
                    listen(v[option], iface)

    def _listen_tls(self, port, iface):
        self.layer.listen_tls(port, self.tls_server_context, iface)

    def stopService(self):
        super().stopService()
        return self.layer.stop()


def make_transport(reactor, values, user=None, path="<config>"):
    """A L{TransportLayer} and the service that opens its listeners, from [sip]."""
    server_ctx, client_ctx = tls_contexts(values, path)
    layer = TransportLayer(
        reactor, user, transport_config(values),
        advertised_host=values["advertised-address"] or values["listen-address"],
        tls_client_context=client_ctx,
    )
    return layer, SIPTransportService(layer, values, server_ctx, path)
