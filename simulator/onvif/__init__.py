"""ONVIF devices of the simulated site: cameras, NVRs (Profile S/G) and door controllers (Profile C)."""

from simulator.onvif.devices import OnvifCamera, OnvifDoorController, OnvifNvr

__all__ = ["OnvifCamera", "OnvifDoorController", "OnvifNvr"]
