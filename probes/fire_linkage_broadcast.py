"""Fire alarm -> emergency broadcast on (A3.3.3, B3.3.3): the panel shows its broadcast output on
(panel-wide or for the zone) within deadline_broadcast_s of the alarm.

The test is the panel's shared fire test (probes/linkage).
"""

from __future__ import annotations

from probes.linkage.fire import fire_spec

PROBE = "fire_linkage_broadcast"
SPEC = fire_spec(PROBE, "broadcast", "Fire alarm starts the emergency broadcast in time")
