"""Fire alarm -> the zone's doors unlock (A3.2.5, B3.2.3).

The panel's fire test (probes/linkage: one alarm per zone, zone after zone, shared by the five
fire_linkage probes) reads every door of the zone before the alarm and polls it after: ONVIF
GetDoorState DoorMode Unlocked or LockedOpen, ISAPI AcsWorkStatus lock released or door held open.
Pass when in every zone tested each door unlocked within deadline_doors_unlock_s. After the fire
reset the doors must lock again: a door that stays unlocked is reported in the restore facts and
handed to the operator, never force-locked.
"""

from __future__ import annotations

from probes.linkage.fire import fire_spec

PROBE = "fire_linkage_doors"
SPEC = fire_spec(PROBE, "doors", "Fire alarm unlocks the zone's doors in time")
