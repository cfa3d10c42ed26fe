"""Perimeter intrusion -> the area's cameras raise their alarm (A1.2.1, C1.2.1, A1.2.2).

Guided: the operator walks into the camera's detection zone; the camera's own analytics event
(RuleEngine, e.g. FieldDetector/ObjectsInside) is the trigger. Pass when every camera of the area
raised its alarm input within deadline_camera_alarm_s. The test (probes/linkage) is shared by
the three intrusion_linkage probes of the camera.
"""

from __future__ import annotations

from probes.linkage.intrusion import intrusion_spec

PROBE = "intrusion_linkage_video"
SPEC = intrusion_spec(PROBE, "video", "Perimeter intrusion raises the area's camera alarms in time")
