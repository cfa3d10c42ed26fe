"""The order of a run's jobs: passive side by side, then the active tests phase by phase; and what a
probe that works through members of its target (a panel's zones) gets from the run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from collectors.exchange import Exchange
from probes.base import Mode, ProbeContext, ProbeSpec, Sample
from probes.finding import Finding
from probes.targets import SiteView, Target
from scorer.sampling import plan as sample_plan
from zhian.config import Config
from zhian.engine.run import Job, Progress, member_sample, passive_order, prepared, run_jobs

Span = tuple[float, float]


class Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Sampled(Params):
    sample: Sample | None = None


def target(id: str, host: str, kind: Any = "camera") -> Target:
    return Target(id, kind, "onvif", host, 80, "a")


TARGETS = (
    target("cam-1", "h1"),
    target("cam-3", "h1"),  # a second device on cam-1's host
    target("cam-2", "h2"),
    target("panel-1", "h3", "panel"),
    target("dev-1", "broker", "mqtt_device"),
    target("dev-2", "broker", "mqtt_device"),
)
SITE = SiteView("t", TARGETS)


ALLOW = ["fire_linkage", "intrusion_linkage", "offline_alert", "credentials", "lockout"]


def config(**sampling: Any) -> Config:
    return Config.model_validate(
        {"community": {"name": "t"}, "inventory": {}, "active": {"allow": ALLOW}, "sampling": sampling}
    )


def no_io(exchange: Exchange) -> None:
    raise AssertionError("no I/O expected")


class Recorder:
    """Fake probes that take a little time and note when each job ran."""

    def __init__(self) -> None:
        self.spans: dict[tuple[str, str], Span] = {}

    def spec(self, id: str, test: str | None = None) -> ProbeSpec:
        async def run(ctx: ProbeContext, t: Target, params: Params) -> Finding:
            start = time.monotonic()
            await asyncio.sleep(0.05)
            self.spans[(id, t.id)] = (start, time.monotonic())
            return Finding(id, t.id, "pass", "ok", "fine", evidence=("x",))

        mode: Mode = "passive" if test is None else "active"
        kinds: Any = ("camera", "panel", "mqtt_device")
        return ProbeSpec(id, id, mode, kinds, Params, 5.0, run, active_test=test)

    def overlap(self, a: tuple[str, str], b: tuple[str, str]) -> bool:
        (s1, e1), (s2, e2) = self.spans[a], self.spans[b]
        return s1 < e2 and s2 < e1

    def before(self, first: Sequence[tuple[str, str]], then: Sequence[tuple[str, str]]) -> bool:
        return max(self.spans[k][1] for k in first) <= min(self.spans[k][0] for k in then)


async def test_passive_side_by_side_then_the_active_phases() -> None:
    rec = Recorder()
    specs = {
        "passive": rec.spec("passive"),
        "fire": rec.spec("fire", "fire_linkage"),
        "intrusion": rec.spec("intrusion", "intrusion_linkage"),
        "offline": rec.spec("offline", "offline_alert"),
        "creds": rec.spec("creds", "credentials"),
        "lockout": rec.spec("lockout", "lockout"),
    }
    plan = [
        ("passive", "cam-1"), ("passive", "cam-2"), ("fire", "panel-1"), ("intrusion", "cam-1"),
        ("lockout", "cam-1"), ("lockout", "cam-2"), ("creds", "cam-1"), ("creds", "cam-3"),
        ("creds", "cam-2"), ("offline", "dev-1"), ("offline", "dev-2"),
    ]  # fmt: skip
    jobs = [Job(specs[probe], SITE.get(device)) for probe, device in plan]
    found: list[Finding] = []
    await run_jobs(jobs, ProbeContext(SITE, no_io), config(), found.append, True, Progress(len(jobs), False))
    assert sorted((f.probe, f.device) for f in found) == sorted(plan)
    passive = [("passive", "cam-1"), ("passive", "cam-2")]
    alone = [("fire", "panel-1"), ("intrusion", "cam-1")]  # what moves the site
    own = [
        ("offline", "dev-1"),
        ("offline", "dev-2"),
        ("creds", "cam-1"),
        ("creds", "cam-3"),
        ("creds", "cam-2"),
    ]
    lockout = [("lockout", "cam-1"), ("lockout", "cam-2")]
    assert rec.overlap(*passive)
    assert rec.before(passive, alone) and rec.before(alone, own) and rec.before(own, lockout)
    assert not rec.overlap(*alone)
    assert rec.overlap(("offline", "dev-1"), ("offline", "dev-2"))  # one broker host: no matter
    assert rec.overlap(("creds", "cam-1"), ("creds", "cam-2")) and rec.overlap(
        ("creds", "cam-2"), ("offline", "dev-1")
    )
    assert not rec.overlap(("creds", "cam-1"), ("creds", "cam-3"))  # login tests: one per host at a time
    assert rec.overlap(*lockout)


def test_a_probe_with_members_gets_the_runs_pick_and_time_for_each() -> None:
    async def run(ctx: ProbeContext, t: Target, params: Sampled) -> Finding:
        raise AssertionError("not run here")

    spec = ProbeSpec(
        "zones", "z", "active", ("panel",), Sampled, 10.0, run, "fire_linkage", lambda s, t: ("1", "2", "3")
    )
    job = Job(spec, SITE.get("panel-1"))
    timed, params = prepared(job, SITE, config(mode="monitoring"))
    assert params.sample == Sample(mode="monitoring", members=("1", "2", "3"), picked=("1", "2", "3"))
    assert timed.spec.timeout_s == 30.0 and timed.target == job.target
    timed, params = prepared(job, SITE, config(mode="inspection", seed=7))
    assert (params.sample.mode, len(params.sample.picked)) == ("inspection", 1)
    redrawn = sample_plan(3, params.sample.seed, ("1", "2", "3")).items  # the facts keep what redraws it
    assert params.sample.seed is not None and redrawn == params.sample.picked
    assert params.sample.rule.startswith("7.4 a)") and timed.spec.timeout_s == 10.0
    plain = Job(Recorder().spec("plain"), SITE.get("cam-1"))
    assert prepared(plain, SITE, config()) == (plain, Params())


def test_the_pick_follows_the_runs_seed_and_differs_between_panels() -> None:
    members = [str(n) for n in range(1, 21)]
    one, two = SITE.get("panel-1"), target("panel-2", "h4", "panel")
    first = member_sample(members, config(seed=11), one)
    assert first == member_sample(members, config(seed=11), one)  # the run's seed redraws it
    assert len(first.picked) == 6 and set(first.picked) <= set(members)  # 30 % of 20
    picks = {member_sample(members, config(seed=n), one).picked for n in range(8)}
    assert len(picks) > 1  # another run, another seed, another pick
    alike = [member_sample(members, config(seed=n), p).picked for n in range(8) for p in (one, two)]
    assert any(alike[i] != alike[i + 1] for i in range(0, len(alike), 2))  # two panels alike, sampled apart


async def test_a_devices_clients_are_closed_once_its_last_job_has_ended() -> None:
    """Not when the run ends: a large site would hold every device's sessions until then."""
    closed: dict[str, float] = {}
    ended: dict[str, float] = {}

    class Client:
        def __init__(self, conn: Any) -> None:
            self.device = conn.device

        async def __aenter__(self) -> Client:
            return self

        async def __aexit__(self, *exc: object) -> None:
            closed[self.device] = time.monotonic()

    async def run(ctx: ProbeContext, t: Target, params: Params) -> Finding:
        async with ctx.client(Client, t):
            await asyncio.sleep(0.05 if t.id == "cam-1" else 0.5)
        ended[t.id] = time.monotonic()
        return Finding("reads", t.id, "pass", "ok", "fine", evidence=("x",))

    spec = ProbeSpec("reads", "reads", "passive", ("camera",), Params, 5.0, run)
    jobs = [Job(spec, SITE.get("cam-1")), Job(spec, SITE.get("cam-2"))]
    ctx = ProbeContext(SITE, no_io)
    await run_jobs(jobs, ctx, config(), lambda f: None, False, Progress(len(jobs), False))
    assert closed["cam-1"] < ended["cam-2"]  # closed while the run still had work
    await ctx.close()
    assert set(closed) == {"cam-1", "cam-2"}


def test_call_bound_jobs_run_device_by_device_after_the_windows() -> None:
    """The plan goes probe by probe; the run takes a device's jobs back to back (its kept
    connections serve them all, its client closes early), devices with the most jobs first."""
    rec = Recorder()
    probes = {name: rec.spec(name) for name in ("events", "clock", "tls")}
    window = ProbeSpec(
        "heartbeat", "heartbeat", "passive", ("mqtt_device",), Params, 5.0, probes["clock"].run, window=True
    )
    plan = [
        (probes["clock"], "panel-1"), (probes["clock"], "cam-1"), (probes["clock"], "cam-2"),
        (window, "dev-1"), (probes["events"], "cam-2"), (probes["events"], "cam-1"),
        (probes["tls"], "cam-1"), (probes["tls"], "cam-2"), (window, "dev-2"),
    ]  # fmt: skip
    jobs = [Job(spec, SITE.get(device)) for spec, device in plan]
    order = [(job.spec.id, job.target.id) for job in passive_order(jobs)]
    assert order == [
        ("heartbeat", "dev-1"), ("heartbeat", "dev-2"),
        ("clock", "cam-1"), ("events", "cam-1"), ("tls", "cam-1"),
        ("clock", "cam-2"), ("events", "cam-2"), ("tls", "cam-2"),
        ("clock", "panel-1"),
    ]  # fmt: skip
