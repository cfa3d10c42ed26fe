"""Device clocks hours off (a recorder 5 h behind, a camera 3 h ahead): the clock probe finds each on
its own device, and the recordings and events timed by those clocks are not misjudged by them
(retention and recording are judged on zhian's clock, corrected by each device's offset)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.faults.conftest import SiteFactory
from tests.faults.run_helpers import error_lines, findings, zhian_run
from tests.faults.site_helpers import write_site_config
from zhian.evidence.verify import verify

pytestmark = pytest.mark.peers

SKEWED = {"nvr-01": -5 * 3600.0, "cam-gate-01": 3 * 3600.0}


@pytest.mark.slow
async def test_clocks_hours_off_are_found_and_judge_nothing_else(
    community_site: SiteFactory, tmp_path: Path
) -> None:
    faults = {device: [{"type": "clock_skew", "seconds": s}] for device, s in SKEWED.items()}
    async with community_site("small", heartbeat_s=1.0, faults=faults) as site:
        secrets = write_site_config(site, tmp_path / "site.yaml", None, [])
        code, _, stderr = await zhian_run(
            tmp_path / "site.yaml", tmp_path / "run", "--key-dir", str(tmp_path / "keys"), env=secrets
        )
    assert code == 0 and not error_lines(stderr), stderr
    rows = findings(tmp_path / "run")
    skew = {r["device"]: r for r in rows if r["probe"] == "clock_skew"}
    for device, seconds in SKEWED.items():
        found = skew[device]
        assert (found["status"], found["reason"]) == ("fail", "clock_skew"), found
        assert abs(found["facts"]["skew_s"] - seconds) < 60, found["facts"]  # the device's own offset
    others = {d: (r["status"], r["reason"]) for d, r in skew.items() if d not in SKEWED}
    assert all(status == "pass" for status, _ in others.values()), others
    # what the skewed clocks time: the recorder's recordings of every camera (taken at its word, the
    # newest would be 5 h old, far past recording_fresh_s), the camera's own events
    judged = [r for r in rows if r["probe"] in ("retention", "recording_alive", "video_signal")]
    assert judged and all(r["status"] == "pass" for r in judged), [
        (r["probe"], r["device"], r["status"], r["reason"], r["detail"])
        for r in judged
        if r["status"] != "pass"
    ]
    verdicts = yaml.safe_load((tmp_path / "run" / "verdicts.yaml").read_text(encoding="utf-8"))["verdicts"]
    assert verdicts["A2.3.4"]["status"] == "pass"  # 90 days kept, counted on zhian's clock
    sealed = verify(tmp_path / "run")
    assert sealed.ok, sealed.problems
