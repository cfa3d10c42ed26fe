"""Fire alarm panels over Modbus TCP: panel logic, vendor register profiles, pymodbus server."""

from simulator.modbus.panel import HAZARD_EVENT, FirePanel
from simulator.modbus.profile import Profile, ProfileError, load_profile

__all__ = ["HAZARD_EVENT", "FirePanel", "Profile", "ProfileError", "load_profile"]
