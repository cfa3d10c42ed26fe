"""Fire alarm -> the platform raises a fire_alarm alert for the panel or the zone's area (A3.2.1, and
the platform pop-up of A3.2.4 / B3.2.2) within deadline_platform_alert_s. Alerts are read from the
platform's API since its own clock before the alarm, so the platform's clock skew does not matter.

The test is the panel's shared fire test (probes/linkage).
"""

from __future__ import annotations

from probes.linkage.fire import fire_spec

PROBE = "fire_linkage_alert"
SPEC = fire_spec(PROBE, "alert", "Fire alarm reaches the platform as an alert in time")
