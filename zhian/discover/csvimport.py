"""A device list exported by a platform (CSV) as discovered devices.

Platforms export their resources with their own column names, in Chinese or English, as UTF-8
(often with a BOM) or GB18030, comma-, tab- or semicolon-separated. The header is matched against
the synonyms below (case and spaces ignored); a row becomes a camera, NVR or door by its type
column; the platform's own id (indexCode) becomes the device's `platform_id` tag, which maps the
platform's alerts back to the inventory. Rows without a usable address are skipped and counted.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import re
from pathlib import Path

from zhian.discover.found import Found, Kind, device_id
from zhian.errors import UsageError

MAX_BYTES = 20 * 1024 * 1024
COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("name", "devicename", "cameraname", "名称", "设备名称", "监控点名称", "通道名称", "资源名称"),
    "host": ("ip", "ipaddress", "host", "address", "ip地址", "设备ip", "地址"),
    "port": ("port", "端口", "端口号"),
    "type": ("type", "devicetype", "kind", "设备类型", "类型", "资源类型"),
    "protocol": ("protocol", "协议", "接入协议", "协议类型"),
    "channel": ("channel", "channelno", "通道号", "通道"),
    "recorder": ("nvr", "recordedby", "recorder", "所属设备", "所属录像机", "编码设备", "所属编码设备"),
    "platform_id": ("indexcode", "platformid", "监控点编号", "资源编号", "设备编号", "编号"),
    "area": ("area", "region", "区域", "所属区域", "安装位置"),
}
KINDS: tuple[tuple[Kind, tuple[str, ...]], ...] = (
    ("nvr", ("nvr", "dvr", "recorder", "录像机", "编码设备", "encoder", "存储")),
    ("door", ("door", "acs", "access", "门禁", "门")),
    ("camera", ("camera", "ipc", "dome", "bullet", "监控点", "摄像", "球机", "枪机", "半球")),
)


def _key(text: str) -> str:
    return re.sub(r"[\s_\-()（）]+", "", text.strip().lower())


def _read(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror}") from None
    if len(data) > MAX_BYTES:
        raise UsageError(f"{path}: larger than {MAX_BYTES // (1024 * 1024)} MB; split the export")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise UsageError(f"{path}: neither UTF-8 nor GB18030 text")


def _kind(text: str) -> Kind | None:
    low = text.lower()
    return next((kind for kind, words in KINDS if any(w in low for w in words)), None)


def import_csv(path: Path) -> list[Found]:
    text = _read(path)
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",\t;")
    except csv.Error:
        dialect = csv.excel
    rows = list(csv.reader(io.StringIO(text), dialect))
    if not rows:
        raise UsageError(f"{path}: empty")
    header = {_key(h): i for i, h in enumerate(rows[0])}
    col = {name: next((header[s] for s in syn if s in header), None) for name, syn in COLUMNS.items()}
    if col["host"] is None:
        raise UsageError(f"{path}:1: no address column (one of: {', '.join(COLUMNS['host'])})")

    def cell(row: list[str], name: str) -> str:
        i = col[name]
        return row[i].strip() if i is not None and i < len(row) else ""

    found: list[Found] = []
    recorders: dict[str, str] = {}  # the recorder's name in the export -> its id
    for line, row in enumerate(rows[1:], start=2):
        host = cell(row, "host")
        try:
            ipaddress.ip_address(host)
        except ValueError:
            continue
        kind = _kind(cell(row, "type")) or "camera"
        isapi = kind != "camera" and bool(re.search(r"isapi|hik|海康|ehome", cell(row, "protocol"), re.I))
        port_text = cell(row, "port")
        if port_text and not port_text.isdigit():
            raise UsageError(f"{path}:{line}: port {port_text!r} is not a number")
        port = int(port_text) if port_text else 80
        name = cell(row, "name")
        dev = Found(
            device_id(kind, name, host), kind, "isapi" if isapi else "onvif", host, port,
            tls=port == 443, path="/ISAPI" if isapi else "/onvif/device_service",
        )  # fmt: skip
        dev.note = "imported: check port, protocol and TLS"
        if pid := cell(row, "platform_id"):
            dev.tags["platform_id"] = pid
        if area := cell(row, "area"):
            dev.tags["area_name"] = area
        if kind == "camera":
            recorder_name, channel = cell(row, "recorder"), cell(row, "channel")
            if recorder_name:
                dev.tags["recorder"] = recorder_name
            if channel.isdigit() and int(channel) > 0:
                dev.channel = int(channel)
        elif kind == "nvr" and name:
            recorders[name] = dev.id
        found.append(dev)
    for dev in found:
        recorder = dev.tags.get("recorder")
        if isinstance(recorder, str) and recorder in recorders:
            dev.recorded_by = recorders[recorder]
            dev.tags.pop("recorder")
    return found
