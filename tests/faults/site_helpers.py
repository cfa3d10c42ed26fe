"""`zhian run` against a whole simulated community, with the simulator playing the operator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from simulator.site import Site
from zhian.cli.simconfig import site_config

# Short windows, with room for a loaded 2-core machine (as the peer tests of `zhian run`).
THRESHOLDS = {
    "heartbeat_interval_s": 1.0,
    "heartbeat_misses": 5,
    "observe_s": 5,
    "offline_alert_window_s": 6,
    "recording_fresh_s": 600,
    "linkage": {k: 3 for k in ("doors_unlock_s", "camera_alarm_s", "emergency_lighting_s", "broadcast_s",
                               "platform_alert_s", "lighting_s")},
}  # fmt: skip


def write_site_config(
    site: Site, path: Path, hook: str | None, allow: list[str], **changes: Any
) -> dict[str, str]:
    """The site's config for a monitoring run with these active tests; returns the secrets' env."""
    config, secrets = site_config(site, hook)
    config["thresholds"] = THRESHOLDS
    config["sampling"] = {"mode": "monitoring"}
    config["active"] = {"allow": allow, "guided": True, "operator_hook": hook, "restore_settle_s": 2}
    config["limits"] = {"call_timeout_s": 5, "probe_timeout_s": 60}
    config |= changes
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return secrets
