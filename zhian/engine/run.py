"""One evaluation run: plan probe jobs from the rules, run them concurrently, keep every finding.

One TaskGroup for the passive probes, all started at once: limits sit on the resources (a
device's connections, the run's open connections; see ProbeContext), not on the number of jobs,
so a probe that only waits on a shared window (one MQTT subscription per broker) never queues
behind call-bound ones, which take a slot each (limits.concurrency, by default as many as
limits.connections, fewer while the process falls behind: zhian/engine/pace.py) so that a job's
deadline runs from when it starts its calls. Then
the permitted active tests in phases (ACTIVE_ORDER): the linkages one at a time, since a
fire linkage moves doors the next test would observe; the tests of one device side by side; lockout
last. Every job has a deadline; a job that fails for any reason becomes an `error`
finding for its device, never the end of the run. Findings are appended to findings.jsonl as
they arrive, so an interrupt keeps everything already collected.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import secrets
import ssl
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import yaml

from collectors.exchange import Sink
from mapping.catalog import Catalog
from mapping.rules import MachineVerdict, Rule, RuleSet, judge
from probes.base import Operator, ProbeContext, ProbeSpec, Sample, to_the_end
from probes.finding import Finding
from probes.targets import SiteView, Target
from probes.transport_common import settle_transports
from scorer.sampling import plan as sample_plan
from zhian import __version__
from zhian.config import Config
from zhian.engine.pace import Pace
from zhian.evidence.exchanges import current_job

# The phases of the active tests, in order (run_jobs); a test no phase names runs in the first. First
# those that move the site (a fire alarm unlocks doors, an intruder switches lights on), one at a
# time, since the next test would observe what they moved; then those that touch only their own
# device, side by side; lockout last, since a lockout that works refuses zhian's address for a while,
# and other tests read that device too (every offline test reads the platform's alerts).
ACTIVE_ORDER = {"fire_linkage": 0, "intrusion_linkage": 0, "offline_alert": 1, "credentials": 1, "lockout": 2}
ONE_AT_A_TIME = 0
# Failed logins count per device: each login test stays below a device's lockout threshold on its
# own, not together with another one on the same host, so a host takes one login test at a time.
ONE_PER_HOST = frozenset({"credentials", "lockout"})
# Tests that only try logins: they change nothing on the site (a lockout they set off lapses by
# itself), so one cut short has nothing to restore.
SITE_UNCHANGED = frozenset({"credentials", "lockout"})


@dataclass(frozen=True)
class Job:
    spec: ProbeSpec
    target: Target


@dataclass
class RunResult:
    run_id: str
    findings: list[Finding]
    verdicts: dict[str, MachineVerdict]
    samples: dict[str, dict[str, Any]]
    interrupted: bool = False
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None


def probe_params(spec: ProbeSpec, config: Config) -> Any:
    """A probe's parameters: its defaults, overridden by the config's thresholds of the same name."""
    values: dict[str, Any] = config.thresholds.model_dump()
    values |= {f"deadline_{k}": v for k, v in config.thresholds.linkage.model_dump().items()}
    values["guided"] = config.active.guided
    values["restore_settle_s"] = config.active.restore_settle_s
    wanted = {k: values[k] for k in spec.params.model_fields if k in values}
    return spec.params.model_validate(wanted)


def sample_group(target: Target) -> str:
    """Homogeneous sets for 7.4: device kind, and the type of an MQTT child device."""
    return f"{target.kind}:{target.params.get('type', '')}" if target.kind == "mqtt_device" else target.kind


def plan_jobs(
    rules: RuleSet,
    indicators: Iterable[str],
    site: SiteView,
    registry: Mapping[str, ProbeSpec],
    area_kinds: Mapping[str, str],
    sampling: str,
    seed: int,
) -> tuple[list[Job], dict[str, dict[str, Any]]]:
    """The (probe, device) pairs the rules of these indicators need, each once; and the samples."""
    groups: dict[str, list[Target]] = {}
    for target in site.targets:
        groups.setdefault(sample_group(target), []).append(target)
    samples: dict[str, dict[str, Any]] = {}
    chosen: dict[str, set[str]] = {}
    for name, members in groups.items():
        ids = [t.id for t in members]
        if sampling == "inspection":
            p = sample_plan(len(ids), seed, ids)
            samples[name] = p.as_dict()
            chosen[name] = set(p.items or ())
        else:
            chosen[name] = set(ids)
    jobs: dict[tuple[str, str], Job] = {}
    for indicator in indicators:
        rule = rules.for_indicator(indicator)
        if rule is None:
            continue
        for target in select(rule, site, area_kinds):
            if rule.sampled and target.id not in chosen[sample_group(target)]:
                continue
            for probe in rule.probes:
                spec = registry[probe]
                if target.kind in spec.applies_to:
                    jobs.setdefault((probe, target.id), Job(spec, target))
    return list(jobs.values()), samples


def select(rule: Rule, site: SiteView, area_kinds: Mapping[str, str]) -> list[Target]:
    return [t for t in site.targets if rule.devices.matches(t, area_kinds)]


def judged_pairs(
    rules: RuleSet, indicators: Iterable[str], jobs: Iterable[Job], area_kinds: Mapping[str, str]
) -> dict[str, set[tuple[str, str]]]:
    """Each ruled indicator -> the (probe, device) pairs of the jobs its rule judges: its own probes
    on its own devices. Each job is matched against the rules that read its probe only (a large
    site has 17,000 jobs and 250 indicators)."""
    scope: dict[str, set[tuple[str, str]]] = {}
    wanted_by: dict[str, list[Rule]] = {}  # probe -> the rules that read it
    for indicator in indicators:
        rule = rules.for_indicator(indicator)
        if rule is not None:
            scope[indicator] = set()
            for probe in rule.probes:
                wanted_by.setdefault(probe, []).append(rule)
    for job in jobs:
        for rule in wanted_by.get(job.spec.id, ()):
            if rule.devices.matches(job.target, area_kinds):
                scope[rule.indicator].add((job.spec.id, job.target.id))
    return scope


def verdicts_for(
    rules: RuleSet, catalog: Catalog, scope: Mapping[str, set[tuple[str, str]]], findings: Sequence[Finding]
) -> dict[str, MachineVerdict]:
    """Each ruled indicator judged on the findings of its own probes on its own devices (`scope`,
    judged_pairs), in the order they came."""
    indicators_of: dict[tuple[str, str], list[str]] = {}
    for indicator, pairs in scope.items():
        for pair in pairs:
            indicators_of.setdefault(pair, []).append(indicator)
    mine: dict[str, list[Finding]] = {indicator: [] for indicator in scope}
    for finding in findings:
        for indicator in indicators_of.get((finding.probe, finding.device), ()):
            mine[indicator].append(finding)
    out: dict[str, MachineVerdict] = {}
    for indicator in scope:
        rule = rules.for_indicator(indicator)
        assert rule is not None  # scope holds ruled indicators only
        out[indicator] = judge(rule, mine[indicator], basic=catalog.get(indicator).kind == "basic")
    return out


class FindingsLog:
    """findings.jsonl, one finding a line, flushed as each arrives."""

    def __init__(self, path: Path, indicators_of: Callable[[Finding], list[str]]) -> None:
        self._file: IO[str] = path.open("a", encoding="utf-8")
        self._indicators_of = indicators_of

    def write(self, finding: Finding) -> None:
        row = finding.as_dict() | {"indicators": self._indicators_of(finding)}
        self._file.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class Progress:
    """A one-line progress bar on stderr (only on a terminal)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.done, self.enabled = total, 0, enabled and sys.stderr.isatty()

    def step(self, label: str) -> None:
        self.done += 1
        if self.enabled:
            width = 30
            filled = width * self.done // max(self.total, 1)
            bar = "#" * filled + "." * (width - filled)
            sys.stderr.write(f"\r[{bar}] {self.done}/{self.total} {label[:40]:<40}")
            sys.stderr.flush()
            if self.done == self.total:
                sys.stderr.write("\n")


async def execute(ctx: ProbeContext, job: Job, params: Any, budget_s: float) -> Finding:
    """Run one probe with its deadline; turn anything but cancellation into an error finding."""
    started = datetime.now(UTC)
    limit = min(job.spec.timeout_s, budget_s)
    current_job.set((job.spec.id, job.target.id))
    try:
        async with asyncio.timeout(limit):
            return await job.spec.run(ctx, job.target, params)
    except TimeoutError:
        reason, detail = "probe_timeout", f"no result within {limit:g} s"
    except Exception as exc:
        reason, detail = "probe_crashed", f"{type(exc).__name__}: {exc}"
    return Finding(job.spec.id, job.target.id, "error", reason, detail, started_at=started)


def interrupted(job: Job, restore: Sequence[Mapping[str, Any]], started: datetime) -> Finding:
    """An active test cut short by a stop: `error`, with each restore step it took, its outcome and
    the exchanges that show it (its own finding never comes; the site must still be seen put back)."""
    steps = [{k: v for k, v in step.items() if k != "evidence"} for step in restore]
    evidence = tuple(dict.fromkeys(x for step in restore for x in step.get("evidence", ())))
    if job.spec.active_test in SITE_UNCHANGED:
        complete, state = True, "it only tries logins, so nothing on the site needs restoring"
    else:
        complete = bool(steps) and all(step.get("ok") for step in steps)
        state = (
            "every restore step succeeded"
            if complete
            else "NOT every restore step succeeded: check the site"
            if steps
            else "it had not moved anything yet, or left no restore record: check the site"
        )
    return Finding(
        job.spec.id,
        job.target.id,
        "error",
        "interrupted",
        f"The active test was interrupted; {state}.",
        {"restore": {"complete": complete, "steps": steps}},
        evidence,
        started_at=started,
    )


def not_permitted(job: Job) -> Finding:
    test = job.spec.active_test or job.spec.id
    return Finding(
        job.spec.id,
        job.target.id,
        "not_assessed",
        "active_not_permitted",
        f"active test {test!r} needs --allow-active and active.allow: [{test}] in the config",
    )


def active_phases(jobs: Iterable[Job]) -> list[tuple[int, list[Job]]]:
    """The active jobs by phase of ACTIVE_ORDER, in order."""
    phases: dict[int, list[Job]] = {}
    for job in jobs:
        phases.setdefault(ACTIVE_ORDER.get(job.spec.active_test or "", ONE_AT_A_TIME), []).append(job)
    return sorted(phases.items())


def lanes(jobs: Iterable[Job]) -> list[list[Job]]:
    """Jobs that may run side by side, as lanes that each run in turn: one lane per host for the
    login tests, one per job for the others."""
    out: dict[tuple[str, ...], list[Job]] = {}
    for job in jobs:
        one_host = job.spec.active_test in ONE_PER_HOST
        key = ("host", job.target.host) if one_host else ("job", job.spec.id, job.target.id)
        out.setdefault(key, []).append(job)
    return list(out.values())


def member_sample(members: Sequence[str], config: Config, target: Target) -> Sample:
    """Every member on monitoring runs; on inspections the 7.4 pick, seeded by the run's seed (see
    with_seed) and the target's id, so that two panels alike are not sampled alike."""
    if config.sampling.mode == "monitoring":
        return Sample(mode="monitoring", members=tuple(members), picked=tuple(members))
    mixed = f"{config.sampling.seed}:{target.id}".encode()
    seed = int.from_bytes(hashlib.sha256(mixed).digest()[:4], "big")
    picked = sample_plan(len(members), seed, members)
    return Sample(
        mode="inspection", members=tuple(members), picked=picked.items or (), rule=picked.rule, seed=seed
    )


def prepared(job: Job, site: SiteView, config: Config) -> tuple[Job, Any]:
    """The job as it runs, and its params. A probe that works through members of its target one by
    one (a panel's zones) gets the run's pick among them, and its timeout for each member picked."""
    params = probe_params(job.spec, config)
    members = job.spec.members(site, job.target) if job.spec.members else ()
    if not members:
        return job, params
    sample = member_sample(members, config, job.target)
    timed = Job(replace(job.spec, timeout_s=job.spec.timeout_s * len(sample.picked)), job.target)
    return timed, job.spec.params.model_validate(params.model_dump() | {"sample": sample})


async def run_jobs(
    jobs: Sequence[Job],
    ctx: ProbeContext,
    config: Config,
    on_finding: Callable[[Finding], None],
    allow_active: bool,
    progress: Progress,
    calls: Pace | None = None,
) -> None:
    """Run every job; `on_finding` gets each finding as it arrives (so an interrupt loses none).

    The passive probes side by side; then the permitted active tests phase by phase (ACTIVE_ORDER),
    each phase's jobs one at a time or side by side in lanes. `calls` (run_pace) limits the
    call-bound jobs in flight."""
    deadline = time.monotonic() + config.limits.probe_timeout_s * max(1, len(jobs))
    calls = calls or run_pace(config)
    async with calls.watching():
        await _run_jobs(jobs, ctx, config, on_finding, allow_active, progress, calls, deadline)


def run_pace(config: Config) -> Pace:
    """The run's limit on call-bound jobs in flight. A job's deadline runs from when it gets its
    slot: without a cap, thousands of jobs queued on the connection limits would time out before
    their first call; and the CPU, see pace.py."""
    return Pace(config.limits.concurrency or config.limits.connections)


async def settled(
    ctx: ProbeContext, jobs: Sequence[Job], calls: contextlib.AbstractAsyncContextManager[Any] | None
) -> list[Job]:
    """`tls: auto` decided once per device (the handshakes are evidence), `ctx.site` set to the
    decided site, and the jobs aimed at the decided targets: `zhian run` and the monitor alike."""
    ctx.site = await settle_transports(ctx, calls)
    decided = {t.id: t for t in ctx.site.targets}
    return [replace(job, target=decided.get(job.target.id, job.target)) for job in jobs]


async def _run_jobs(
    jobs: Sequence[Job],
    ctx: ProbeContext,
    config: Config,
    on_finding: Callable[[Finding], None],
    allow_active: bool,
    progress: Progress,
    calls: Pace,
    deadline: float,
) -> None:
    jobs = await settled(ctx, jobs, calls)

    def keep(finding: Finding) -> None:
        on_finding(finding)
        progress.step(f"{finding.probe} {finding.device}")

    async def one(job: Job, held: bool = False) -> None:
        """`held`: the job's slot was taken for it before its task was made (see passive_phase)."""
        slot = contextlib.nullcontext() if job.spec.window else _given_back(calls, held)
        async with slot:
            timed, params = prepared(job, ctx.site, config)
            started = datetime.now(UTC)
            try:
                finding = await execute(ctx, timed, params, max(1.0, deadline - time.monotonic()))
            except asyncio.CancelledError:
                if job.spec.mode == "active":
                    try:  # a shared test (a panel's fire test) restores in its own task: wait for it
                        await to_the_end(ctx.close_shared())
                    finally:
                        keep(interrupted(job, ctx.restores.pop(job.target.id, ()), started))
                raise
            ctx.restores.pop(job.target.id, None)  # reported by the test's own finding
            keep(finding)
            ctx.job_ended(job.target.id)

    async def in_turn(lane: Sequence[Job]) -> None:
        for job in lane:
            await one(job)

    async def side_by_side(groups: Iterable[Sequence[Job]]) -> None:
        async with asyncio.TaskGroup() as tg:
            for lane in groups:
                tg.create_task(in_turn(lane), name=f"{lane[0].spec.id}:{lane[0].target.id}")

    def allowed(job: Job) -> bool:
        return allow_active and job.spec.active_test in config.active.allow

    async def passive_phase(passive: Sequence[Job]) -> None:
        """Each passive job as a task of its own once it has a slot: a large site's thousands of
        jobs waiting for one are entries of a list, not tasks (a couple of kilobytes each)."""
        async with asyncio.TaskGroup() as tg:
            for job in passive:
                held = not job.spec.window
                if held:
                    await calls.acquire()
                tg.create_task(one(job, held), name=f"{job.spec.id}:{job.target.id}")

    ctx.plan(j.target.id for j in jobs if j.spec.mode == "passive" or allowed(j))
    await passive_phase(passive_order(j for j in jobs if j.spec.mode == "passive"))
    active = [j for j in jobs if j.spec.mode == "active"]
    for job in active:
        if not allowed(job):
            keep(not_permitted(job))
    for phase, phase_jobs in active_phases(j for j in active if allowed(j)):
        await (in_turn(phase_jobs) if phase == ONE_AT_A_TIME else side_by_side(lanes(phase_jobs)))


def passive_order(jobs: Iterable[Job]) -> list[Job]:
    """Windows first, so that they open at t = 0 even with a cap on the call-bound jobs; then the
    call-bound jobs device by device, a device's jobs back to back in plan order. A device's calls
    then follow each other within its client's keep-alive, so its probes share its connections
    (one TLS handshake serves many calls), and its client is closed when its last job ends rather
    than near the end of the run. Devices with the most jobs first (cameras), so that the last
    groups to start are short ones (the phase still ends on the last devices' longest job, a few
    seconds later than on the short jobs the probe-by-probe plan ended with: bench/README.md)."""
    windows: list[Job] = []
    by_device: dict[str, list[Job]] = {}
    for job in jobs:
        if job.spec.window:
            windows.append(job)
        else:
            by_device.setdefault(job.target.id, []).append(job)
    groups = sorted(by_device.values(), key=len, reverse=True)  # stable: plan order among equals
    return windows + [job for group in groups for job in group]


@contextlib.asynccontextmanager
async def _given_back(calls: Pace, held: bool) -> AsyncIterator[None]:
    """A call-bound job's slot for as long as it runs: taken here, or already `held`."""
    if not held:
        await calls.acquire()
    try:
        yield
    finally:
        calls.release()


def config_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_outputs(out: Path, config: Config, result: RunResult, score_doc: Mapping[str, Any]) -> None:
    verdicts = {k: v.as_entry() for k, v in sorted(result.verdicts.items())}
    doc = {
        "community": config.community.name,
        "date": result.started_at.date().isoformat(),
        "verdicts": verdicts,
    }
    (out / "verdicts.yaml").write_text(
        yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=200), encoding="utf-8"
    )
    (out / "score.json").write_text(
        json.dumps(score_doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )


def run_metadata(config: Config, config_path: Path, result: RunResult, seed: int) -> dict[str, Any]:
    return {
        "schema": "zhian.engine.run/1",
        "run_id": result.run_id,
        "tool": f"zhian {__version__}",
        "community": config.community.model_dump(),
        "config": str(config_path),
        "config_sha256": config_digest(config_path),
        "started_at": result.started_at.isoformat(),
        "finished_at": result.finished_at.isoformat() if result.finished_at else None,
        "interrupted": result.interrupted,
        "sampling": {"mode": config.sampling.mode, "seed": seed, "groups": result.samples},
        "findings": len(result.findings),
    }


def run_start_fields(
    config: Config, config_path: Path, result: RunResult, seed: int, levels: Sequence[str], jobs: int
) -> dict[str, Any]:
    """The ledger's first record: what was evaluated, with which config and tool, and how sampled."""
    return {
        "run_id": result.run_id,
        "started_at": result.started_at.isoformat(),
        "tool": f"zhian {__version__}",
        "community": config.community.model_dump(),
        "config_sha256": config_digest(config_path),
        "levels": list(levels),
        "sampling": {"mode": config.sampling.mode, "seed": seed, "groups": result.samples},
        "jobs": jobs,
    }


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:8]


def seed_for(config: Config) -> int:
    return config.sampling.seed if config.sampling.seed is not None else secrets.randbelow(2**31)


def with_seed(config: Config, seed: int) -> Config:
    """The config as this run applies it: the sampling seed drawn (or given) for the run filled in,
    so every sample of the run (devices, a panel's zones) comes from the one seed run.json keeps."""
    return config.model_copy(update={"sampling": config.sampling.model_copy(update={"seed": seed})})


def make_context(
    site: SiteView, config: Config, sink: Sink, operator: Operator | None, allow_active: bool
) -> ProbeContext:
    trust = ssl.create_default_context(cafile=str(config.ca_file)) if config.ca_file else None
    active = frozenset(config.active.allow) if allow_active else frozenset()
    return ProbeContext(
        site=site,
        sink=sink,
        trust=trust,
        call_timeout_s=config.limits.call_timeout_s,
        per_host=config.limits.per_host,
        connections=asyncio.Semaphore(config.limits.connections),
        max_reply_bytes=config.limits.max_reply_bytes,
        active=active,
        operator=operator,
    )
