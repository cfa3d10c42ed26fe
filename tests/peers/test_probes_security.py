"""The security probes on whole simulated communities (small: all pass; faulty: each fault found
only where it is injected) and the ISAPI retention probe on a single simulated NVR."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import pytest
from conftest import SiteFactory
from security_helpers import (
    PASSWORD,
    USER,
    Ledger,
    Starter,
    assert_absent,
    isapi,
    isapi_community,
    isapi_targets,
    site_secrets,
)
from site_probe import site_context

from probes import (
    isapi_retention,
    login_lockout,
    platform_auth,
    privacy_masking,
    transport_security,
    weak_credentials,
)
from probes.base import ProbeContext, ProbeSpec
from probes.finding import Finding
from probes.targets import Secret, SiteView, Target
from simulator.isapi import IsapiDoorController, IsapiNvr
from simulator.platform import api as platform_api
from simulator.site import Site

pytestmark = pytest.mark.peers
__all__ = ["isapi"]  # the fixture, imported for pytest

FAST: dict[str, dict[str, Any]] = {
    "weak_credentials": {"try_interval_s": 0},
    "login_lockout": {"try_interval_s": 0},
}
# Lockout last: a working lockout refuses zhian's own address afterwards.
ORDER = (transport_security, platform_auth, privacy_masking, isapi_retention, weak_credentials, login_lockout)


async def run_all(ctx: ProbeContext, spec: ProbeSpec) -> dict[str, Finding]:
    params = spec.params(**FAST.get(spec.id, {}))
    targets = [t for t in ctx.site.targets if t.kind in spec.applies_to]
    found = await asyncio.gather(*(spec.run(ctx, t, params) for t in targets))
    return {f.device: f for f in found}


async def run_site(site: Site, ledger: Ledger) -> dict[str, dict[str, Finding]]:
    # every device at once, in the simulator's process: room for a loaded machine (the hung and the
    # slow camera of the faulty site cost it once per probe)
    ctx = site_context(site, ledger, active=("credentials", "lockout"), call_timeout_s=6.0)
    try:
        return {m.SPEC.id: await run_all(ctx, m.SPEC) for m in ORDER}
    finally:
        await ctx.close()


def check_evidence(results: dict[str, dict[str, Finding]], ledger: Ledger) -> None:
    ids = {e.id for e in ledger}
    for findings in results.values():
        for f in findings.values():
            assert set(f.evidence) <= ids, f"{f.probe} {f.device} cites unknown exchanges"
            if f.status in ("pass", "fail"):
                assert f.evidence, f"{f.probe} {f.device}: a verdict without evidence"


def statuses(findings: dict[str, Finding]) -> dict[str, tuple[str, str]]:
    return {d: (f.status, f.reason) for d, f in findings.items()}


def assert_no_default_passwords(ledger: Ledger) -> None:
    """The tries' exchanges show no candidate password (the user name `admin` may be redacted too)."""
    tries = [e for e in ledger if e.operation in ("deviceInfo", "GetDeviceInformation", "login as admin")]
    assert tries
    for e in tries:
        for _, password in weak_credentials.DEFAULTS:
            if password != "admin":
                assert password not in e.request, f"{e.device} {e.operation}: a tried password in evidence"


@pytest.mark.slow
async def test_small_site_passes_everything(community_site: SiteFactory) -> None:
    async with community_site("small") as site:
        ledger = Ledger()
        results = await run_site(site, ledger)
        secrets = site_secrets(site)
    for probe in (
        "transport_security",
        "platform_auth",
        "privacy_masking",
        "weak_credentials",
        "login_lockout",
    ):
        bad = {d: s for d, s in statuses(results[probe]).items() if s[0] != "pass"}
        assert not bad, f"{probe}: {bad}"
    assert {f.reason for f in results["weak_credentials"].values()} == {"defaults_refused"}
    lockout = statuses(results["login_lockout"])
    assert lockout["door-b2-unit1"] == ("pass", "lockout_configured")  # ISAPI: read, not tried
    assert lockout["cam-gate-01"] == ("pass", "lockout_enforced")
    assert results["login_lockout"]["platform"].facts["locked_after"] == 5
    assert {s for s in statuses(results["isapi_retention"]).values()} == {("not_assessed", "not_isapi")}
    assert results["privacy_masking"]["platform"].facts["records"] == 24
    check_evidence(results, ledger)
    assert_absent(ledger, *secrets)
    assert_no_default_passwords(ledger)


@pytest.mark.slow
async def test_faulty_site_finds_each_fault_only_where_injected(community_site: SiteFactory) -> None:
    async with community_site("faulty") as site:
        ledger = Ledger()
        results = await run_site(site, ledger)
        secrets = site_secrets(site)
    unreachable = {
        "cam-roof-b1",
        "cam-garage-02",
        "cam-b2-lobby",
        "cam-b1-lobby",
    }  # offline, hung, slow, bad XML

    def failing(probe: str) -> dict[str, tuple[str, str]]:
        return {d: s for d, s in statuses(results[probe]).items() if s[0] == "fail"}

    def others_pass(probe: str, *exceptions: str) -> None:
        for device, (status, reason) in statuses(results[probe]).items():
            if device in exceptions:
                continue
            expected = ("error",) if device in unreachable else ("pass",)
            if probe == "transport_security" and device in ("cam-b2-lobby", "cam-b1-lobby"):
                expected = ("pass",)  # TLS itself is fine on slow and malformed devices
            assert status in expected, f"{probe} {device}: {status} {reason}"

    assert failing("weak_credentials") == {"door-pump-room": ("fail", "default_credentials_accepted")}
    weak = results["weak_credentials"]["door-pump-room"]
    assert (
        weak.facts["accepted_user"] == "admin"
        and weak.detail == "A default password was accepted for user admin."
    )
    others_pass("weak_credentials", "door-pump-room")
    assert failing("login_lockout") == {"cam-gate-01": ("fail", "no_lockout")}
    assert results["login_lockout"]["cam-gate-01"].facts["failed_logins"] == 6
    others_pass("login_lockout", "cam-gate-01")
    assert failing("transport_security") == {"cam-perimeter-01": ("fail", "plaintext")}
    others_pass("transport_security", "cam-perimeter-01")
    assert statuses(results["transport_security"])["cam-roof-b1"] == ("error", "unreachable")
    assert statuses(results["platform_auth"]) == {"platform": ("pass", "authentication_enforced")}
    assert statuses(results["privacy_masking"]) == {"platform": ("pass", "personal_data_masked")}
    check_evidence(results, ledger)
    assert_absent(ledger, *secrets)
    assert_no_default_passwords(ledger)


async def test_platform_probes_fail_on_open_routes_and_unmasked_data(
    community_site: SiteFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The simulated platform masks everything and guards every route: unmask two residents and
    # open one route, as a badly built platform would.
    monkeypatch.setattr(platform_api, "PUBLIC", platform_api.PUBLIC | {"/api/v1/devices"})
    async with community_site("small") as site:
        api: Any = site.devices["platform"].api  # type: ignore[attr-defined]
        api._residents[3] |= {"id_number": "11010519491231002X", "mobile": "13912345678"}
        api._residents[5] |= {"id_number": "110105194912310021"}  # a wrong check digit: not an ID
        ledger = Ledger()
        ctx = site_context(site, ledger)
        target = ctx.site.get("platform")
        privacy = await privacy_masking.run(ctx, target, privacy_masking.Params())
        auth = await platform_auth.run(ctx, target, platform_auth.Params())
    assert (privacy.status, privacy.reason) == ("fail", "personal_data_unmasked")
    assert privacy.facts["unmasked_id_numbers"] == 1 and privacy.facts["unmasked_mobiles"] == 1
    assert privacy.facts["id_like_invalid_check"] == 1
    assert privacy.facts["fields"] == ["id_number", "mobile"]
    assert_absent(ledger, "11010519491231002X", "13912345678", "110105194912310021")
    assert "11010519491231002X" not in repr(privacy) and "13912345678" not in repr(privacy)
    assert (auth.status, auth.reason, auth.facts["open"]) == (
        "fail",
        "unauthenticated_access",
        ["GET /devices"],
    )


# -- ISAPI retention on one NVR -----------------------------------------------------------------

CAMERAS: Sequence[dict[str, Any]] = (
    {"id": "cam-ok", "camera": {"recorded_by": "nvr1", "channel": 1}},
    {"id": "cam-key", "tags": {"key_location": True}, "camera": {"recorded_by": "nvr1", "channel": 2}},
    {"id": "cam-gap", "camera": {"recorded_by": "nvr1", "channel": 3},
     "faults": [{"type": "recording_gap", "days_ago": 3, "hours": 6}]},
    {"id": "cam-short", "camera": {"recorded_by": "nvr1", "channel": 4},
     "faults": [{"type": "retention_short", "days": 12}]},
    {"id": "cam-deleted", "camera": {"recorded_by": "nvr1", "channel": 5},
     "faults": [{"type": "deleted_span", "days_ago": 10, "hours": 12}]},
)  # fmt: skip


@pytest.mark.slow
async def test_isapi_retention_per_camera_and_per_nvr(isapi: Starter) -> None:
    community = isapi_community(cameras=list(CAMERAS))
    nvr = await isapi(IsapiNvr, community)
    ledger = Ledger()
    # a camera the NVR does not record (channel 9): the shared search finds nothing for it
    unknown = Target("cam-none", "camera", "onvif", "127.0.0.1", 1, "u1",
                     params={"recorded_by": "nvr1", "channel": 9})  # fmt: skip
    site = SiteView("t", (*isapi_targets(nvr, community), unknown))
    ctx = ProbeContext(site=site, sink=ledger, call_timeout_s=5.0)
    params = isapi_retention.Params()
    found = {t.id: await isapi_retention.run(ctx, t, params) for t in ctx.site.targets}
    await ctx.close()
    assert (found["cam-ok"].status, found["cam-ok"].reason) == ("pass", "retained")
    assert 30.9 < found["cam-ok"].facts["observed_days"] < 31.1  # searched back 30 days and one more
    assert (found["cam-key"].reason, found["cam-key"].facts["required_days"]) == ("retention_short", 90)
    assert 34.9 < found["cam-key"].facts["observed_days"] < 35.1
    assert found["cam-gap"].reason == "recording_gap" and [
        g["hours"] for g in found["cam-gap"].facts["gaps"]
    ] == [6.0]
    assert found["cam-short"].reason == "retention_short"
    assert 11.9 < found["cam-short"].facts["observed_days"] < 12.1
    assert found["cam-deleted"].reason == "recording_gap"  # a deletion looks like any hole here
    whole = found["nvr1"]
    assert (whole.status, whole.ratio) == ("partial", round(1 / 6, 4))
    assert whole.facts["failing"] == ["cam-key", "cam-gap", "cam-short", "cam-deleted", "cam-none"]
    assert set(found["cam-ok"].evidence) <= set(whole.evidence)  # one search per window per run
    assert set(found["cam-ok"].evidence) == set(found["cam-gap"].evidence)  # both cite the shared one
    pages = [e.operation for e in ledger if e.operation.startswith("ContentMgmt/search")]
    shared = [p for p in pages if p.startswith("ContentMgmt/search tracks 101,301,401,501,901 ")]
    assert len(shared) == 63  # 31 days of 1 h files on three channels, 12 on one: ~2,500, 40 a page
    assert len([p for p in pages if p.startswith("ContentMgmt/search track 201 ")]) == 22  # 35 days held
    assert pages.count("ContentMgmt/search track 901 from 0") == 1  # found nothing: asked alone
    assert (found["cam-none"].status, found["cam-none"].reason) == ("fail", "no_recording")
    assert set(found["cam-none"].evidence) > set(found["cam-ok"].evidence)
    assert [e.operation for e in ledger].count("time") == 1  # the NVR's clock read once
    assert_absent(ledger, PASSWORD)


async def test_isapi_retention_errors_and_out_of_scope(isapi: Starter) -> None:
    community = isapi_community(nvr={"faults": [{"type": "hung"}]})
    hung = await isapi(IsapiNvr, community)
    ledger = Ledger()
    targets = isapi_targets(hung, community)
    unknown = Target("cam-lost", "camera", "onvif", "127.0.0.1", 1, "u1", params={"recorded_by": "nvr-x"})
    edge = Target("cam-edge", "camera", "onvif", "127.0.0.1", 1, "u1")
    ctx = ProbeContext(site=SiteView("t", (*targets, unknown, edge)), sink=ledger, call_timeout_s=0.5)
    params = isapi_retention.Params()
    stuck = await isapi_retention.run(ctx, ctx.site.get("cam1"), params)
    assert (stuck.status, stuck.reason) == ("error", "unreachable") and stuck.evidence
    assert ledger.get(stuck.evidence[-1]).error
    lost = await isapi_retention.run(ctx, unknown, params)
    assert (lost.status, lost.reason) == ("error", "inventory_invalid")
    own = await isapi_retention.run(ctx, edge, params)
    assert (own.status, own.reason) == ("not_assessed", "not_isapi")
    await ctx.close()


async def test_weak_credentials_stay_below_the_lockout_and_need_permission(isapi: Starter) -> None:
    door = await isapi(IsapiDoorController)
    door.ctx.guard.max_failures = 3  # a strict device: 3 failures lock
    ledger = Ledger()
    target = Target("door1", "door", "isapi", "127.0.0.1", door.port, "u1", path="/ISAPI", username=USER,
                    password=Secret(PASSWORD))  # fmt: skip
    ctx = ProbeContext(site=SiteView("t", (target,)), sink=ledger, active=frozenset({"credentials"}))
    started = time.monotonic()
    found = await weak_credentials.run(ctx, target, weak_credentials.Params(try_interval_s=0.2))
    assert (found.status, found.reason) == ("pass", "defaults_refused")
    assert (found.facts["tries"], found.facts["lockout_threshold"]) == (2, 3)
    assert time.monotonic() - started >= 0.6  # two spaced tries and the spaced clearing login
    assert door.ctx.guard.failures_total == 2 and not door.ctx.guard.locked("127.0.0.1")
    assert door.ctx.guard.remaining("127.0.0.1") == 3  # the own login cleared the count
    passive = ProbeContext(site=SiteView("t", (target,)), sink=ledger)
    refused = await weak_credentials.run(passive, target, weak_credentials.Params())
    assert (refused.status, refused.reason) == ("not_assessed", "active_not_allowed")
    assert door.ctx.guard.failures_total == 2
