"""Fire alarm -> the cameras of the zone's area raise their alarm (A3.2.4, B3.2.2).

The panel's fire test (probes/linkage) subscribes a PullPoint on every camera of the area
before the alarm; the linkage's effect is the camera's alarm input (tns1:Device/Trigger/DigitalInput,
or its alarm output Device/Trigger/Relay) turning active after the trigger. Pass when every camera
raised it within deadline_camera_alarm_s.
"""

from __future__ import annotations

from probes.linkage.fire import fire_spec

PROBE = "fire_linkage_video"
SPEC = fire_spec(PROBE, "video", "Fire alarm raises the zone's camera alarms in time")
