"""Request parsing and reply rendering from the official ONVIF WSDL/XSD types.

The WSDLs bundled with onvif-zeep-async are loaded once per process with zeep (about half a second,
in a worker thread on the first device start) and shared by every simulated device: a thousand
cameras must not load a thousand schema sets.  Each reply body is built from its operation's output
element, so a reply the schema does not allow fails here rather than in a client.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onvif
from lxml import etree
from zeep.settings import Settings
from zeep.transports import Transport
from zeep.wsdl import Document
from zeep.xsd import Element

from simulator.onvif import soap

WSDL_DIR = Path(onvif.__file__).parent / "wsdl"

# binding key -> (wsdl file, binding QName)
BINDINGS: dict[str, tuple[str, str]] = {
    "device": ("devicemgmt.wsdl", f"{{{soap.TDS}}}DeviceBinding"),
    "media": ("media.wsdl", f"{{{soap.TRT}}}MediaBinding"),
    "events": ("events.wsdl", f"{{{soap.TEV}}}EventBinding"),
    "pullpoint": ("events.wsdl", f"{{{soap.TEV}}}PullPointSubscriptionBinding"),
    "subscription": ("events.wsdl", f"{{{soap.TEV}}}SubscriptionManagerBinding"),
    "recording": ("recording.wsdl", f"{{{soap.TRC}}}RecordingBinding"),
    "search": ("search.wsdl", f"{{{soap.TSE}}}SearchBinding"),
    "doorcontrol": ("doorcontrol.wsdl", f"{{{soap.TDC}}}DoorControlBinding"),
    "accesscontrol": ("accesscontrol.wsdl", f"{{{soap.TAC}}}PACSBinding"),
}


@dataclass(frozen=True)
class Operation:
    """One WSDL operation as served: its name, binding and the zeep document that types it."""

    name: str
    binding: str
    soap_op: Any
    doc: Any


class Catalog:
    """The zeep documents of every served binding, indexed by request element QName."""

    def __init__(self) -> None:
        docs: dict[str, Any] = {}
        self._ops: dict[str, dict[str, Operation]] = {}
        for key, (wsdl, binding_qname) in BINDINGS.items():
            if wsdl not in docs:
                docs[wsdl] = _document(str(WSDL_DIR / wsdl))
            doc = docs[wsdl]
            binding = doc.bindings[binding_qname]
            ops: dict[str, Operation] = {}
            for name in binding._operations:
                soap_op = binding.get(name)
                ops[str(soap_op.input.body.qname)] = Operation(name, key, soap_op, doc)
            self._ops[key] = ops
        self._docs = docs

    def operation(self, bindings: tuple[str, ...], qname: str) -> Operation | None:
        """The operation a request element names, among the bindings one endpoint serves."""
        for key in bindings:
            op = self._ops[key].get(qname)
            if op is not None:
                return op
        return None

    def parse(self, op: Operation, element: etree._Element) -> Any:
        """The request parameters as zeep values (durations, dateTimes and lists typed)."""
        return op.soap_op.input.body.parse(element, op.doc.types)

    def reply(self, op: Operation, values: dict[str, Any]) -> bytes:
        """The whole reply envelope for an operation, its body built from the output element."""
        body_el = op.soap_op.output.body
        env, body = soap.new_envelope()
        body_el.render(body, body_el(**values))
        return soap.serialize(env)

    def build(self, qname: str, values: dict[str, Any], type_qname: str | None = None) -> etree._Element:
        """A typed element for xs:any content (tt:Message, service Capabilities, fault details).

        A global element is looked up by `qname`; an element the schema only types (such as
        tt:MessageDescription inside a topic set) is declared here with `type_qname`.
        """
        types = self._types_for(qname if type_qname is None else type_qname)
        if type_qname is None:
            element = types.get_element(qname)
        else:
            element = _element(qname, types.get_type(type_qname))
        holder = etree.Element("holder", nsmap=soap.NSMAP)
        element.render(holder, element(**values))
        return holder[0]

    def _types_for(self, qname: str) -> Any:
        namespace = etree.QName(qname).namespace
        for doc in self._docs.values():
            if namespace in doc.types.namespaces:
                return doc.types
        raise KeyError(qname)


def _document(path: str) -> Any:
    transport: Any = Transport()  # type: ignore[no-untyped-call]
    return Document(path, transport, settings=Settings(strict=False))


def _element(qname: str, xsd_type: Any) -> Any:
    return Element(etree.QName(qname), xsd_type)  # type: ignore[no-untyped-call]


_catalog: Catalog | None = None
_lock = threading.Lock()


def catalog() -> Catalog:
    """The process-wide catalog, loaded on first use."""
    global _catalog
    with _lock:
        if _catalog is None:
            _catalog = Catalog()
        return _catalog


async def load_catalog() -> Catalog:
    """Load the catalog off the event loop (the first device start pays for it, once)."""
    if _catalog is not None:
        return _catalog
    return await asyncio.to_thread(catalog)
