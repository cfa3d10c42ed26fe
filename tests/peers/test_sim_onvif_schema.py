"""Every operation the simulated ONVIF devices serve answers with XML the official schemas accept.

The schema set is assembled from what onvif-zeep-async ships: the XSD files under onvif/wsdl and
the schemas embedded in the service WSDLs, plus the W3C SOAP 1.2 envelope schema (not shipped,
transcribed below).  Replies are posted for raw, so nothing on the client side repairs them.
"""

from __future__ import annotations

import copy
import re
import shutil

import aiohttp
import pytest
from lxml import etree
from onvif_helpers import (
    DEVICE_CLASSES,
    WSDL_DIR,
    Starter,
    camera,
    door,
    nvr,
    soap_request,
    start,
)

from simulator.onvif.events import MAX_PULLPOINTS
from simulator.onvif.server import OnvifDevice

pytestmark = pytest.mark.peers
__all__ = ["start"]  # the fixture, imported for pytest

XS = "http://www.w3.org/2001/XMLSchema"
ENV = "http://www.w3.org/2003/05/soap-envelope"

# The SOAP 1.2 envelope schema (http://www.w3.org/2003/05/soap-envelope, W3C Recommendation 2007),
# transcribed.  One deliberate change: Body and Detail content is processContents="strict" instead
# of "lax", so every element a reply carries must be declared by the ONVIF schemas and is validated.
SOAP12_XSD = f"""<?xml version="1.0"?>
<xs:schema xmlns:xs="{XS}" xmlns:tns="{ENV}" targetNamespace="{ENV}" elementFormDefault="qualified">
  <xs:import namespace="http://www.w3.org/XML/1998/namespace" schemaLocation="xml.xsd"/>
  <xs:element name="Envelope" type="tns:Envelope"/>
  <xs:complexType name="Envelope">
    <xs:sequence>
      <xs:element ref="tns:Header" minOccurs="0"/>
      <xs:element ref="tns:Body" minOccurs="1"/>
    </xs:sequence>
    <xs:anyAttribute namespace="##other" processContents="lax"/>
  </xs:complexType>
  <xs:element name="Header" type="tns:Header"/>
  <xs:complexType name="Header">
    <xs:sequence>
      <xs:any namespace="##any" processContents="lax" minOccurs="0" maxOccurs="unbounded"/>
    </xs:sequence>
    <xs:anyAttribute namespace="##other" processContents="lax"/>
  </xs:complexType>
  <xs:element name="Body" type="tns:Body"/>
  <xs:complexType name="Body">
    <xs:sequence>
      <xs:any namespace="##any" processContents="strict" minOccurs="0" maxOccurs="unbounded"/>
    </xs:sequence>
    <xs:anyAttribute namespace="##other" processContents="lax"/>
  </xs:complexType>
  <xs:attribute name="mustUnderstand" type="xs:boolean" default="0"/>
  <xs:attribute name="relay" type="xs:boolean" default="0"/>
  <xs:attribute name="role" type="xs:anyURI"/>
  <xs:attribute name="encodingStyle" type="xs:anyURI"/>
  <xs:element name="Fault" type="tns:Fault"/>
  <xs:complexType name="Fault" final="extension">
    <xs:sequence>
      <xs:element name="Code" type="tns:faultcode"/>
      <xs:element name="Reason" type="tns:faultreason"/>
      <xs:element name="Node" type="xs:anyURI" minOccurs="0"/>
      <xs:element name="Role" type="xs:anyURI" minOccurs="0"/>
      <xs:element name="Detail" type="tns:detail" minOccurs="0"/>
    </xs:sequence>
  </xs:complexType>
  <xs:complexType name="faultreason">
    <xs:sequence>
      <xs:element name="Text" type="tns:reasontext" minOccurs="1" maxOccurs="unbounded"/>
    </xs:sequence>
  </xs:complexType>
  <xs:complexType name="reasontext">
    <xs:simpleContent>
      <xs:extension base="xs:string">
        <xs:attribute ref="xml:lang" use="required"/>
      </xs:extension>
    </xs:simpleContent>
  </xs:complexType>
  <xs:complexType name="faultcode">
    <xs:sequence>
      <xs:element name="Value" type="tns:faultcodeEnum"/>
      <xs:element name="Subcode" type="tns:subcode" minOccurs="0"/>
    </xs:sequence>
  </xs:complexType>
  <xs:simpleType name="faultcodeEnum">
    <xs:restriction base="xs:QName">
      <xs:enumeration value="tns:DataEncodingUnknown"/>
      <xs:enumeration value="tns:MustUnderstand"/>
      <xs:enumeration value="tns:Receiver"/>
      <xs:enumeration value="tns:Sender"/>
      <xs:enumeration value="tns:VersionMismatch"/>
    </xs:restriction>
  </xs:simpleType>
  <xs:complexType name="subcode">
    <xs:sequence>
      <xs:element name="Value" type="xs:QName"/>
      <xs:element name="Subcode" type="tns:subcode" minOccurs="0"/>
    </xs:sequence>
  </xs:complexType>
  <xs:complexType name="detail">
    <xs:sequence>
      <xs:any namespace="##any" processContents="strict" minOccurs="0" maxOccurs="unbounded"/>
    </xs:sequence>
    <xs:anyAttribute namespace="##other" processContents="lax"/>
  </xs:complexType>
</xs:schema>
"""

SERVICE_WSDLS = ["devicemgmt", "media", "events", "recording", "search", "doorcontrol", "accesscontrol"]
EXTRA_SCHEMAS = {  # imported by the WSDLs rather than embedded; fault details come from here
    "http://docs.oasis-open.org/wsn/b-2": "b-2.xsd",
    "http://docs.oasis-open.org/wsrf/r-2": "r-2.xsd",
    "http://www.onvif.org/ver10/schema": "onvif.xsd",
    ENV: "soap12.xsd",
}


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> etree.XMLSchema:
    """One XMLSchema importing every namespace a reply may use."""
    out = tmp_path_factory.mktemp("onvif-xsd")
    for f in WSDL_DIR.iterdir():
        if f.is_file() and f.suffix in (".xsd", ""):
            shutil.copy(f, out / f.name)
    (out / "soap12.xsd").write_text(SOAP12_XSD)
    imports = dict(EXTRA_SCHEMAS)
    for name in SERVICE_WSDLS:
        root = etree.parse(str(WSDL_DIR / f"{name}.wsdl")).getroot()
        for i, embedded in enumerate(root.iter(f"{{{XS}}}schema")):
            # the embedded schema, as a document of its own with the WSDL's prefixes in scope
            standalone = etree.Element(
                embedded.tag, dict(embedded.attrib), nsmap={**root.nsmap, **embedded.nsmap}
            )
            standalone.extend(copy.deepcopy(child) for child in embedded)
            path = out / f"{name}-{i}.xsd"
            etree.ElementTree(standalone).write(str(path))
            imports[embedded.get("targetNamespace", "")] = path.name
    master = etree.Element(f"{{{XS}}}schema", nsmap={"xs": XS}, targetNamespace="urn:zhian:test:all")
    for ns, location in imports.items():
        etree.SubElement(master, f"{{{XS}}}import", namespace=ns, schemaLocation=location)
    (out / "all.xsd").write_bytes(etree.tostring(master))
    return etree.XMLSchema(etree.parse(str(out / "all.xsd")))


PATHS = {
    "tds": "/onvif/device_service",
    "trt": "/onvif/media_service",
    "tev": "/onvif/events_service",
    "trc": "/onvif/recording_service",
    "tse": "/onvif/search_service",
    "tdc": "/onvif/doorcontrol_service",
    "tac": "/onvif/accesscontrol_service",
}
PREFIX = {
    "http://www.onvif.org/ver10/device/wsdl": "tds",
    "http://www.onvif.org/ver10/media/wsdl": "trt",
    "http://www.onvif.org/ver10/events/wsdl": "tev",
    "http://www.onvif.org/ver10/recording/wsdl": "trc",
    "http://www.onvif.org/ver10/search/wsdl": "tse",
    "http://www.onvif.org/ver10/doorcontrol/wsdl": "tdc",
    "http://www.onvif.org/ver10/accesscontrol/wsdl": "tac",
}
TOPIC = '<wsnt:TopicExpression Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">'
# (served operation, request body) in the order they run; {name} is filled from the device or from
# an earlier reply ({search}: the last SearchToken).  "pull:" operations go to the pull point.
REQUESTS: list[tuple[str, str]] = [
    ("tds:GetSystemDateAndTime", "<tds:GetSystemDateAndTime/>"),
    ("tds:GetDeviceInformation", "<tds:GetDeviceInformation/>"),
    ("tds:GetCapabilities", "<tds:GetCapabilities><tds:Category>All</tds:Category></tds:GetCapabilities>"),
    (
        "tds:GetServices",
        "<tds:GetServices><tds:IncludeCapability>true</tds:IncludeCapability></tds:GetServices>",
    ),
    ("tds:GetServiceCapabilities", "<tds:GetServiceCapabilities/>"),
    ("tds:GetScopes", "<tds:GetScopes/>"),
    ("tds:GetHostname", "<tds:GetHostname/>"),
    ("trt:GetServiceCapabilities", "<trt:GetServiceCapabilities/>"),
    ("trt:GetVideoSources", "<trt:GetVideoSources/>"),
    ("trt:GetProfiles", "<trt:GetProfiles/>"),
    ("trt:GetProfile", "<trt:GetProfile><trt:ProfileToken>Profile_101</trt:ProfileToken></trt:GetProfile>"),
    (
        "trt:GetStreamUri",
        "<trt:GetStreamUri><trt:StreamSetup><tt:Stream>RTP-Unicast</tt:Stream><tt:Transport>"
        "<tt:Protocol>RTSP</tt:Protocol></tt:Transport></trt:StreamSetup>"
        "<trt:ProfileToken>Profile_101</trt:ProfileToken></trt:GetStreamUri>",
    ),
    ("tev:GetServiceCapabilities", "<tev:GetServiceCapabilities/>"),
    ("tev:GetEventProperties", "<tev:GetEventProperties/>"),
    (
        "tev:CreatePullPointSubscription",
        "<tev:CreatePullPointSubscription><tev:InitialTerminationTime>PT60S</tev:InitialTerminationTime>"
        "</tev:CreatePullPointSubscription>",
    ),
    (
        "pull:PullMessages",
        "<tev:PullMessages><tev:Timeout>PT1S</tev:Timeout><tev:MessageLimit>100</tev:MessageLimit>"
        "</tev:PullMessages>",
    ),
    ("pull:SetSynchronizationPoint", "<tev:SetSynchronizationPoint/>"),
    ("pull:Renew", "<wsnt:Renew><wsnt:TerminationTime>PT120S</wsnt:TerminationTime></wsnt:Renew>"),
    ("pull:Unsubscribe", "<wsnt:Unsubscribe/>"),
    ("trc:GetServiceCapabilities", "<trc:GetServiceCapabilities/>"),
    ("trc:GetRecordings", "<trc:GetRecordings/>"),
    (
        "trc:GetRecordingConfiguration",
        "<trc:GetRecordingConfiguration><trc:RecordingToken>{recording}</trc:RecordingToken>"
        "</trc:GetRecordingConfiguration>",
    ),
    ("trc:GetRecordingJobs", "<trc:GetRecordingJobs/>"),
    (
        "trc:GetRecordingJobState",
        "<trc:GetRecordingJobState><trc:JobToken>Job_{recording}</trc:JobToken></trc:GetRecordingJobState>",
    ),
    ("tse:GetServiceCapabilities", "<tse:GetServiceCapabilities/>"),
    ("tse:GetRecordingSummary", "<tse:GetRecordingSummary/>"),
    (
        "tse:GetRecordingInformation",
        "<tse:GetRecordingInformation><tse:RecordingToken>{recording}</tse:RecordingToken>"
        "</tse:GetRecordingInformation>",
    ),
    (
        "tse:FindEvents",
        "<tse:FindEvents><tse:StartPoint>2000-01-01T00:00:00Z</tse:StartPoint><tse:Scope/>"
        f"<tse:SearchFilter>{TOPIC}tns1:RecordingHistory//.</wsnt:TopicExpression></tse:SearchFilter>"
        "<tse:IncludeStartState>true</tse:IncludeStartState><tse:KeepAliveTime>PT10S</tse:KeepAliveTime>"
        "</tse:FindEvents>",
    ),
    (
        "tse:GetEventSearchResults",
        "<tse:GetEventSearchResults><tse:SearchToken>{search}</tse:SearchToken>"
        "<tse:WaitTime>PT1S</tse:WaitTime></tse:GetEventSearchResults>",
    ),
    (
        "tse:FindRecordings",
        "<tse:FindRecordings><tse:Scope/><tse:KeepAliveTime>PT10S</tse:KeepAliveTime></tse:FindRecordings>",
    ),
    (
        "tse:GetSearchState",
        "<tse:GetSearchState><tse:SearchToken>{search}</tse:SearchToken></tse:GetSearchState>",
    ),
    ("tse:EndSearch", "<tse:EndSearch><tse:SearchToken>{search}</tse:SearchToken></tse:EndSearch>"),
    (
        "tse:FindRecordings",
        "<tse:FindRecordings><tse:Scope/><tse:KeepAliveTime>PT10S</tse:KeepAliveTime></tse:FindRecordings>",
    ),
    (
        "tse:GetRecordingSearchResults",
        "<tse:GetRecordingSearchResults><tse:SearchToken>{search}</tse:SearchToken>"
        "<tse:WaitTime>PT1S</tse:WaitTime></tse:GetRecordingSearchResults>",
    ),
    ("tdc:GetServiceCapabilities", "<tdc:GetServiceCapabilities/>"),
    ("tdc:GetDoorInfoList", "<tdc:GetDoorInfoList/>"),
    ("tdc:GetDoorInfo", "<tdc:GetDoorInfo><tdc:Token>Door_1</tdc:Token></tdc:GetDoorInfo>"),
    ("tdc:GetDoorState", "<tdc:GetDoorState><tdc:Token>Door_1</tdc:Token></tdc:GetDoorState>"),
    ("tdc:AccessDoor", "<tdc:AccessDoor><tdc:Token>Door_1</tdc:Token></tdc:AccessDoor>"),
    *(
        (f"tdc:{op}", f"<tdc:{op}><tdc:Token>Door_1</tdc:Token></tdc:{op}>")
        for op in (
            "UnlockDoor",
            "LockDoor",
            "BlockDoor",
            "LockDownDoor",
            "LockDownReleaseDoor",
            "LockOpenDoor",
            "LockOpenReleaseDoor",
            "DoubleLockDoor",
        )
    ),
    ("tac:GetServiceCapabilities", "<tac:GetServiceCapabilities/>"),
    ("tac:GetAccessPointInfoList", "<tac:GetAccessPointInfoList/>"),
    (
        "tac:GetAccessPointInfo",
        "<tac:GetAccessPointInfo><tac:Token>AccessPoint_1</tac:Token></tac:GetAccessPointInfo>",
    ),
    (
        "tac:GetAccessPointState",
        "<tac:GetAccessPointState><tac:Token>AccessPoint_1</tac:Token></tac:GetAccessPointState>",
    ),
    ("tac:GetAreaInfoList", "<tac:GetAreaInfoList/>"),
    ("tac:GetAreaInfo", "<tac:GetAreaInfo><tac:Token>gate</tac:Token></tac:GetAreaInfo>"),
]


def served(device: OnvifDevice) -> set[str]:
    ops = {f"{PREFIX[s.namespace]}:{op}" for s in device.services.values() for op in s.handlers}
    assert device.pullpoints is not None
    return ops | {f"pull:{op}" for op in device.pullpoints.handlers}


async def post(session: aiohttp.ClientSession, url: str, body: bytes) -> tuple[int, bytes]:
    async with session.post(url, data=body, headers={"Content-Type": "application/soap+xml"}) as resp:
        return resp.status, await resp.read()


def valid(schema: etree.XMLSchema, reply: bytes) -> etree._Element:
    root = etree.fromstring(reply)
    if not schema.validate(root):
        raise AssertionError(f"{schema.error_log}\n{reply.decode()[:3000]}")
    return root


DEVICES = {
    "camera": [camera(camera={"configured_retention_days": 30})],
    "nvr": [
        nvr(),
        camera(id="camA", camera={"recorded_by": "nvr1", "channel": 1}, faults=[{"type": "video_loss"}]),
        camera(
            id="camB",
            camera={"recorded_by": "nvr1", "channel": 2},
            faults=[{"type": "recording_gap", "days_ago": 2, "hours": 5}],
        ),
    ],
    "door": [door()],
}
RECORDING = {"camera": "REC_cam1", "nvr": "REC_camA", "door": ""}


@pytest.mark.parametrize("kind", ["camera", "nvr", "door"])
async def test_every_served_operation_replies_schema_valid(
    kind: str, start: Starter, schema: etree.XMLSchema
) -> None:
    device = await start(DEVICE_CLASSES[kind], DEVICES[kind])
    ops = served(device)
    assert ops <= {key for key, _ in REQUESTS}, "an operation is served that this test does not check"
    values = {"recording": RECORDING[kind], "search": ""}
    pullpoint = ""
    checked: set[str] = set()
    async with aiohttp.ClientSession() as session:
        for key, template in REQUESTS:
            if key not in ops:
                continue
            prefix, _ = key.split(":")
            url = pullpoint if prefix == "pull" else device.base_url() + PATHS[prefix]
            status, reply = await post(session, url, soap_request(template.format(**values)))
            root = valid(schema, reply)
            assert status == 200, reply.decode()
            token = root.findtext(".//{http://www.onvif.org/ver10/search/wsdl}SearchToken")
            values["search"] = token or values["search"]
            address = root.findtext(
                ".//{http://www.onvif.org/ver10/events/wsdl}SubscriptionReference/{*}Address"
            )
            pullpoint = address or pullpoint
            checked.add(key)
    assert checked == ops


async def test_soap_faults_are_schema_valid(start: Starter, schema: etree.XMLSchema) -> None:
    """NotAuthorized, unknown token, unknown operation, dead or exhausted pull points, injected fault."""
    device = await start(
        DEVICE_CLASSES["camera"], [camera(faults=[{"type": "soap_fault", "operations": ["GetScopes"]}])]
    )
    base = device.base_url()
    cases: list[tuple[str, bytes, int, str]] = [
        (
            "/onvif/device_service",
            soap_request("<tds:GetDeviceInformation/>", password="wrong"),
            400,
            "NotAuthorized",
        ),
        (
            "/onvif/device_service",
            soap_request("<tds:GetDeviceInformation/>", user=None),
            400,
            "NotAuthorized",
        ),
        (
            "/onvif/media_service",
            soap_request("<trt:GetProfile><trt:ProfileToken>nope</trt:ProfileToken></trt:GetProfile>"),
            400,
            "NoProfile",
        ),
        ("/onvif/device_service", soap_request("<tds:SystemReboot/>"), 500, "ActionNotSupported"),
        ("/onvif/device_service", soap_request("<tds:GetScopes/>"), 500, "Receiver"),
        ("/onvif/pullpoint/999", soap_request("<tev:SetSynchronizationPoint/>"), 400, "ResourceUnknownFault"),
        ("/onvif/device_service", b"<env:Envelope", 400, "WellFormed"),
        (
            "/onvif/device_service",
            b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body/></s:Envelope>',
            500,
            "VersionMismatch",
        ),
    ]
    subscribe = soap_request("<tev:CreatePullPointSubscription/>")
    async with aiohttp.ClientSession() as session:
        for _ in range(MAX_PULLPOINTS):
            assert (await post(session, base + "/onvif/events_service", subscribe))[0] == 200
        cases.append(("/onvif/events_service", subscribe, 500, "SubscribeCreationFailedFault"))
        for path, body, status, code in cases:
            got, reply = await post(session, base + path, body)
            root = valid(schema, reply)
            assert got == status, reply.decode()
            codes = " ".join(root.itertext())
            assert code in codes, reply.decode()
            assert root.find(f"{{{ENV}}}Body/{{{ENV}}}Fault") is not None


async def test_validation_is_not_vacuous(start: Starter, schema: etree.XMLSchema) -> None:
    """A reply broken on purpose fails: the schema set really checks reply content."""
    device = await start(DEVICE_CLASSES["camera"], [camera()])
    async with aiohttp.ClientSession() as session:
        _, reply = await post(
            session, device.base_url() + "/onvif/device_service", soap_request("<tds:GetDeviceInformation/>")
        )
    valid(schema, reply)
    broken = re.sub(rb"<tds:Manufacturer>[^<]*</tds:Manufacturer>", b"", reply)
    assert broken != reply
    assert not schema.validate(etree.fromstring(broken))
    renamed = reply.replace(b"GetDeviceInformationResponse", b"GetDeviceInformationReply")
    assert not schema.validate(etree.fromstring(renamed))
