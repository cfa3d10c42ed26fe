"""Hikvision ISAPI devices: an access controller and a Profile-S-only NVR, behind HTTP Digest."""

from simulator.isapi.door import IsapiDoorController
from simulator.isapi.nvr import IsapiNvr

__all__ = ["IsapiDoorController", "IsapiNvr"]
