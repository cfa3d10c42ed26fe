"""Perimeter intrusion -> the area's lighting relays switch on (A1.2.1, C1.2.1 at night).

The relays' MQTT state and telemetry are observed read-only; pass when every lighting relay of the
area switched on within deadline_lighting_s of the camera's intrusion event. The test
(probes/linkage) is shared by the three intrusion_linkage probes of the camera.
"""

from __future__ import annotations

from probes.linkage.intrusion import intrusion_spec

PROBE = "intrusion_linkage_lighting"
SPEC = intrusion_spec(PROBE, "lighting", "Perimeter intrusion switches the area's lighting on in time")
