"""A door controller whose ONVIF pull points go deaf (they still answer PullMessages and Renew, but
hear nothing): `zhian run` completes, the dead subscription is an `error` on that door alone with the
exchanges that show it, what the subscription heard before it died is kept, and the chain verifies."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import yaml

from tests.faults.conftest import SiteFactory
from tests.faults.run_helpers import error_lines, findings, zhian_run
from tests.faults.site_helpers import write_site_config
from zhian.evidence.verify import verify

pytestmark = pytest.mark.peers

DEAF = "door-gate-01"
KEPT = ("cameras", "nvrs", "doors")  # the devices whose event services the run reads; the rest is not needed


@pytest.mark.slow
async def test_a_deaf_pull_point_is_an_error_on_its_door_alone(
    community_site: SiteFactory, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    deaf = {DEAF: [{"type": "subscription_dies_silently", "after_s": 1}]}
    async with community_site("small", faults=deaf) as site:
        config = tmp_path / "site.yaml"
        secrets = write_site_config(site, config, None, [])
        doc = yaml.safe_load(config.read_text(encoding="utf-8"))
        doc["inventory"] = {k: v for k, v in doc["inventory"].items() if k in KEPT}
        config.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
        code, _, stderr = await zhian_run(
            config, out, "--level", "A", "--key-dir", str(tmp_path / "keys"), env=secrets
        )
    assert code == 0 and not error_lines(stderr), stderr
    rows = findings(out)
    events = {r["device"]: r for r in rows if r["probe"] == "event_service"}
    doors = {d["id"] for d in doc["inventory"]["doors"] if d.get("protocol", "onvif") == "onvif"}
    assert doors - {DEAF} and doors <= set(events)
    dead = events.pop(DEAF)
    assert (dead["status"], dead["reason"]) == ("error", "subscription_silent"), dead
    assert dead["facts"]["sync_heard"] is False and dead["facts"]["initial_messages"] > 0
    # no other device's event service is judged on a silence it did not have
    assert {r["status"] for r in events.values() if r["reason"] != "not_onvif"} == {"pass"}, events
    assert [r["device"] for r in rows if r["reason"].startswith("subscription")] == [DEAF]
    # the exchanges that show it are in the chain: the first pull heard the door's states, the
    # synchronization point answered, the pulls after it brought nothing
    with sqlite3.connect(out / "ledger.sqlite") as db:
        records = {rid: json.loads(body) for rid, body in db.execute("SELECT id, body FROM records")}
    cited = [records[e] for e in dead["evidence"]]
    operations = [c["method"]["operation"] for c in cited if c.get("kind") == "exchange"]
    assert {"CreatePullPointSubscription", "PullMessages", "Renew", "SetSynchronizationPoint"} <= set(
        operations
    )
    pulls = [c for c in cited if c.get("method", {}).get("operation") == "PullMessages"]
    assert "NotificationMessage" in pulls[0]["response"]
    assert "NotificationMessage" not in pulls[-1]["response"]
    sealed = verify(out)
    assert sealed.ok, sealed.problems
