"""The site's MQTT broker restarts while a `zhian run` process holds its heartbeat window: the run
completes, the window's exchange records the gap, no device is judged offline on the silence the
restart caused, every finding's evidence is in the chain, and the chain verifies."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest
import yaml
from linkage_helpers import until

from simulator.site import Site
from tests.faults.conftest import SiteFactory
from tests.faults.run_helpers import error_lines, findings, start_zhian
from tests.faults.site_helpers import THRESHOLDS, write_site_config
from zhian.evidence.verify import verify

pytestmark = pytest.mark.peers

OBSERVE_S = 8.0
DOWN_S = 2.0
ZHIAN_CLIENT = " as zhian-"  # mosquitto's notice of a client zhian connected (collectors/mqtt/session.py)


def zhian_connections(site: Site) -> int:
    log = site.workdir / "broker" / "mosquitto.log"
    text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    return sum(ZHIAN_CLIENT in line and "New client connected" in line for line in text.splitlines())


@pytest.mark.slow
async def test_a_broker_restart_under_a_running_zhian_is_a_gap_not_every_device_offline(
    community_site: SiteFactory, tmp_path: Path
) -> None:
    out, config = tmp_path / "run", tmp_path / "site.yaml"
    async with community_site("small", broker="mosquitto", heartbeat_s=0.5) as site:
        thresholds = THRESHOLDS | {"observe_s": OBSERVE_S, "heartbeat_misses": 5}
        secrets = write_site_config(site, config, None, [], thresholds=thresholds)
        doc = yaml.safe_load(config.read_text(encoding="utf-8"))
        # the broker's gateways only, level C: the heartbeat windows and no other MQTT client of zhian
        doc["inventory"] = {k: v for k, v in doc["inventory"].items() if k in ("brokers", "gateways")}
        config.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
        proc = await start_zhian(
            config, out, "--level", "C", "--key-dir", str(tmp_path / "keys"), env=secrets
        )
        communicate = asyncio.ensure_future(proc.communicate())
        await until(lambda: zhian_connections(site) > 0 or communicate.done(), timeout_s=60)
        assert not communicate.done(), "the run ended before its window subscribed"
        await site.restart_broker(down_s=DOWN_S)
        stdout, stderr = await asyncio.wait_for(communicate, timeout=120)
        assert zhian_connections(site) >= 2  # subscribed again after the restart
    text = stderr.decode()
    assert proc.returncode == 0 and not error_lines(text), text
    rows = findings(out)
    judged = {
        r["device"]: (r["status"], r["reason"]) for r in rows if r["probe"] in ("heartbeat", "gateway_status")
    }
    assert len(judged) == 14, judged  # level C: the smoke and gas detectors, the emergency buttons
    assert {s for s, _ in judged.values()} == {"pass"}, {d: s for d, s in judged.items() if s[0] != "pass"}
    with sqlite3.connect(out / "ledger.sqlite") as db:
        records = {rid: json.loads(body) for rid, body in db.execute("SELECT id, body FROM records")}
    windows = [
        r for r in records.values() if str(r.get("method", {}).get("operation", "")).startswith("observe(")
    ]
    [window] = windows
    [gap] = window["facts"]["gaps"]
    assert gap["s"] >= DOWN_S * 0.9, gap
    for row in rows:  # nothing lost: what each finding cites is in the chain
        assert set(row["evidence"]) <= set(records), row
        assert row["evidence"] or row["status"] == "not_assessed", row
    assert all(r["facts"]["broker_gap_s"] >= DOWN_S * 0.9 for r in rows if r["probe"] == "heartbeat")
    sealed = verify(out)
    assert sealed.ok, sealed.problems
    assert stdout
