"""Perimeter intrusion -> the platform raises an intrusion alert for the camera or its area, so the
guards are told (A1.2.2, A1.2.1), within deadline_platform_alert_s of the camera's event.

The test (probes/linkage) is shared by the three intrusion_linkage probes of the camera.
"""

from __future__ import annotations

from probes.linkage.intrusion import intrusion_spec

PROBE = "intrusion_linkage_alert"
SPEC = intrusion_spec(PROBE, "alert", "Perimeter intrusion reaches the platform as an alert in time")
