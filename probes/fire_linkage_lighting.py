"""Fire alarm -> emergency lighting on (A3.5.2): the panel's emergency lighting output (its
registers) and the lighting relays of the zone's area (their MQTT state and telemetry, observed
read-only) switch on within deadline_emergency_lighting_s of the alarm.

The test is the panel's shared fire test (probes/linkage).
"""

from __future__ import annotations

from probes.linkage.fire import fire_spec

PROBE = "fire_linkage_lighting"
SPEC = fire_spec(PROBE, "lighting", "Fire alarm switches emergency lighting on in time")
