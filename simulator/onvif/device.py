"""The device management service: identity, clock, scopes and where the other services live.

XAddrs are built from the scheme, host and port the device really listens on, so a client that
follows GetServices / GetCapabilities reaches the same listener (plain HTTP under plain_http).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

from simulator.onvif import soap
from simulator.onvif.render import Catalog
from simulator.onvif.service import Call, Service
from simulator.runtime import DeviceContext

# ONVIF Core access class PRE_AUTH: answered without credentials (Core spec, default access policy).
PRE_AUTH = frozenset(
    {
        "GetSystemDateAndTime",
        "GetServices",
        "GetServiceCapabilities",
        "GetCapabilities",
        "GetHostname",
        "GetWsdlUrl",
        "GetEndpointReference",
    }
)

_CST = timezone(timedelta(hours=8), "CST")

# The Capabilities element each service puts in GetServices (IncludeCapability), with its type when
# the shipped WSDL declares no global element for it (Profile C services of the 2013 WSDLs).
CAPABILITIES_ELEMENT: dict[str, tuple[str, str | None]] = {
    ns: (f"{{{ns}}}Capabilities", None) for ns in (soap.TDS, soap.TRT, soap.TEV, soap.TRC, soap.TSE)
} | {ns: (f"{{{ns}}}Capabilities", f"{{{ns}}}ServiceCapabilities") for ns in (soap.TDC, soap.TAC)}


@dataclass(frozen=True)
class Identity:
    manufacturer: str
    model: str
    firmware: str
    serial: str
    hardware_id: str
    scopes: tuple[str, ...]  # onvif://www.onvif.org/type/..., profile/..., name/..., location/...


def identity(
    ctx: DeviceContext, manufacturer: str, model: str, kind: str, profiles: tuple[str, ...]
) -> Identity:
    spec = ctx.spec
    serial = f"{model}{zlib.crc32(f'{ctx.community.seed}/{spec.id}'.encode()) % 10**9:09d}"
    location = ctx.community.area(spec.area).name_zh or spec.area
    scopes = (
        f"onvif://www.onvif.org/type/{kind}",
        *(f"onvif://www.onvif.org/Profile/{p}" for p in profiles),
        f"onvif://www.onvif.org/name/{quote(spec.id)}",
        f"onvif://www.onvif.org/hardware/{quote(model)}",
        f"onvif://www.onvif.org/location/{quote(location)}",
    )
    return Identity(manufacturer, model, "V5.7.3 build 220315", serial, "88", scopes)


class DeviceService:
    """tds: answers from the device identity, its clock and its list of served endpoints."""

    def __init__(
        self,
        cat: Catalog,
        ctx: DeviceContext,
        ident: Identity,
        services: Callable[[], list[Service]],
        base_url: Callable[[], str],
    ) -> None:
        self.cat = cat
        self.ctx = ctx
        self.ident = ident
        self.services = services
        self.base_url = base_url

    def service(self) -> Service:
        return Service(
            path="/onvif/device_service",
            namespace=soap.TDS,
            bindings=("device",),
            handlers={
                "GetDeviceInformation": self.get_device_information,
                "GetSystemDateAndTime": self.get_system_date_and_time,
                "GetCapabilities": self.get_capabilities,
                "GetServices": self.get_services,
                "GetServiceCapabilities": self.get_service_capabilities,
                "GetScopes": self.get_scopes,
                "GetHostname": self.get_hostname,
            },
            capabilities=self.capabilities,
        )

    def capabilities(self) -> dict[str, Any]:
        return {
            "Network": {"IPFilter": False, "ZeroConfiguration": False, "IPVersion6": False, "DynDNS": False},
            "Security": {
                "UsernameToken": True,
                "HttpDigest": False,
                "TLS1.2": self.ctx.server_tls is not None,
            },
            "System": {"DiscoveryResolve": False, "DiscoveryBye": False, "RemoteDiscovery": False},
        }

    async def get_device_information(self, call: Call) -> dict[str, Any]:
        i = self.ident
        return {
            "Manufacturer": i.manufacturer,
            "Model": i.model,
            "FirmwareVersion": i.firmware,
            "SerialNumber": i.serial,
            "HardwareId": i.hardware_id,
        }

    async def get_system_date_and_time(self, call: Call) -> dict[str, Any]:
        now = self.ctx.now()
        local = now.astimezone(_CST)
        return {
            "SystemDateAndTime": {
                "DateTimeType": "NTP",
                "DaylightSavings": False,
                "TimeZone": {"TZ": "CST-8:00:00"},
                "UTCDateTime": _date_time(now),
                "LocalDateTime": _date_time(local),
            }
        }

    async def get_capabilities(self, call: Call) -> dict[str, Any]:
        base = self.base_url()
        by_ns = {s.namespace: s for s in self.services()}
        caps: dict[str, Any] = {
            "Device": {
                "XAddr": base + "/onvif/device_service",
                "Network": {
                    "IPFilter": False,
                    "ZeroConfiguration": False,
                    "IPVersion6": False,
                    "DynDNS": False,
                },
                "System": {
                    "DiscoveryResolve": False,
                    "DiscoveryBye": False,
                    "RemoteDiscovery": False,
                    "SystemBackup": False,
                    "SystemLogging": False,
                    "FirmwareUpgrade": False,
                    "SupportedVersions": [{"Major": 2, "Minor": 60}],
                },
                "Security": {
                    "TLS1.1": False,
                    "TLS1.2": self.ctx.server_tls is not None,
                    "OnboardKeyGeneration": False,
                    "AccessPolicyConfig": False,
                    "X.509Token": False,
                    "SAMLToken": False,
                    "KerberosToken": False,
                    "RELToken": False,
                },
            },
            "Events": {
                "XAddr": base + "/onvif/events_service",
                "WSSubscriptionPolicySupport": False,
                "WSPullPointSupport": True,
                "WSPausableSubscriptionManagerInterfaceSupport": False,
            },
        }
        if soap.TRT in by_ns:
            caps["Media"] = {
                "XAddr": base + by_ns[soap.TRT].path,
                "StreamingCapabilities": {"RTPMulticast": False, "RTP_TCP": True, "RTP_RTSP_TCP": True},
            }
        extension: dict[str, Any] = {}
        if soap.TRC in by_ns:
            extension["Recording"] = {
                "XAddr": base + by_ns[soap.TRC].path,
                "ReceiverSource": False,
                "MediaProfileSource": True,
                "DynamicRecordings": False,
                "DynamicTracks": False,
                "MaxStringLength": 64,
            }
        if soap.TSE in by_ns:
            extension["Search"] = {"XAddr": base + by_ns[soap.TSE].path, "MetadataSearch": False}
        if extension:
            caps["Extension"] = extension
        categories = {str(c) for c in (call.params.Category or [])}
        if categories and "All" not in categories:
            caps = {k: v for k, v in caps.items() if k in categories}
            if not caps:
                raise soap.SoapFault(
                    "Receiver",
                    ("ter:ActionNotSupported", "ter:NoSuchService"),
                    f"no service for {sorted(categories)}",
                )
        return {"Capabilities": caps}

    async def get_services(self, call: Call) -> dict[str, Any]:
        base = self.base_url()
        out = []
        for s in self.services():
            entry: dict[str, Any] = {
                "Namespace": s.namespace,
                "XAddr": base + s.path,
                "Version": {"Major": 2, "Minor": 60},
            }
            if call.params.IncludeCapability:
                qname, type_qname = CAPABILITIES_ELEMENT[s.namespace]
                element = self.cat.build(qname, s.capabilities(), type_qname)
                entry["Capabilities"] = {"_value_1": element}
            out.append(entry)
        return {"Service": out}

    async def get_service_capabilities(self, call: Call) -> dict[str, Any]:
        return {"Capabilities": self.capabilities()}

    async def get_scopes(self, call: Call) -> dict[str, Any]:
        return {"Scopes": [{"ScopeDef": "Fixed", "ScopeItem": s} for s in self.ident.scopes]}

    async def get_hostname(self, call: Call) -> dict[str, Any]:
        return {"HostnameInformation": {"FromDHCP": False, "Name": self.ctx.spec.id}}


def _date_time(t: datetime) -> dict[str, Any]:
    return {
        "Time": {"Hour": t.hour, "Minute": t.minute, "Second": t.second},
        "Date": {"Year": t.year, "Month": t.month, "Day": t.day},
    }
