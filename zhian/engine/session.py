"""One evaluation of a site from start to seal: plan, open the evidence, run the jobs, close, judge,
score, write the outputs and the report, seal. `zhian run` only parses its options and prints what
`run_session` returns; any other caller (the monitor) drives the same steps.

Whatever stops the run (a signal at any moment, a full disk, a failing report) it ends the same
way: the ledger closed with a `run_end` record that says why, what could still be written
written, and the directory sealed (or, when not even the seal can be written, left with a valid
chain for `zhian seal --recover`). Nothing here prints a traceback or loses a committed record.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from collectors.exchange import Exchange
from mapping.catalog import LEVELS, load_catalog
from mapping.rules import load_rules
from probes.finding import Finding
from probes.registry import PROBES
from scorer.results import merge_verdicts
from scorer.score import ScoreReport, score
from zhian.config import Config
from zhian.configcheck import check_config
from zhian.engine.alert_feed import alert_feed
from zhian.engine.inventory import area_kinds, build_site, inventory_summary
from zhian.engine.operator import ConsoleOperator, HookOperator
from zhian.engine.pace import Pace
from zhian.engine.run import (
    FindingsLog,
    Progress,
    RunResult,
    judged_pairs,
    make_context,
    new_run_id,
    plan_jobs,
    run_jobs,
    run_metadata,
    run_pace,
    run_start_fields,
    seed_for,
    verdicts_for,
    with_seed,
    write_outputs,
)
from zhian.engine.stops import Stopped, Stopper
from zhian.errors import UsageError
from zhian.evidence.commits import GROUPED
from zhian.evidence.exchanges import ExchangeRecorder, finding_fields
from zhian.evidence.keys import SigningKey, default_key_dir, load_or_create
from zhian.evidence.ledger import Ledger, open_ledger
from zhian.evidence.manifest import seal
from zhian.report.write import write_report

# What writing evidence raises when the disk is full (or the directory went away).
WRITE_ERRORS = (OSError, sqlite3.DatabaseError)
Ending = Literal["complete", "interrupted", "terminated", "no_space", "failed"]


@dataclass(frozen=True)
class RunOptions:
    config: Path
    out: Path | None = None
    level: str | None = None
    allow_active: bool = False
    threshold: Literal["gt", "ge"] = "gt"
    key_dir: Path | None = None
    lang: Literal["zh", "en"] = "zh"
    progress: bool = True


@dataclass
class Outcome:
    """How the run ended and what it left."""

    out: Path
    run_id: str
    ending: Ending = "complete"
    problem: str | None = None  # the one line that says why the run did not complete
    findings: int = 0
    exchanges: int = 0
    records: int = 0
    report: ScoreReport | None = None
    report_path: Path | None = None
    sealed: bool = False
    signer: str | None = None
    key_folder: Path | None = None
    config: Config | None = None
    notes: list[str] = field(default_factory=list)


def ending_of(stopper: Stopper) -> Ending:
    if stopper.why is not None:
        return "no_space"
    return "terminated" if stopper.signum == signal.SIGTERM else "interrupted"


def _remove_partial(out: Path) -> None:
    """Half-written files (a report's temporary file) are not evidence: they go before the seal."""
    for tmp in out.rglob(".*.tmp"):
        tmp.unlink(missing_ok=True)


class Session:
    """The steps of one run, each usable alone; `run_session` drives them in order."""

    def __init__(self, options: RunOptions, stopper: Stopper) -> None:
        self.options = options
        self.stopper = stopper
        checked = check_config(options.config)  # everything, before the run directory exists
        config = checked.config
        self.site = build_site(config, checked.base)
        self.catalog = load_catalog()
        self.rules = load_rules()
        self.levels = (options.level,) if options.level else LEVELS
        self.indicators = [i.id for lv in self.levels for i in self.catalog.level(lv)]
        self.seed = seed_for(config)
        self.config = with_seed(config, self.seed)
        self.kinds = area_kinds(self.config)
        self.jobs, samples = plan_jobs(
            self.rules, self.indicators, self.site, PROBES, self.kinds, self.config.sampling.mode, self.seed
        )
        self.result = RunResult(new_run_id(), [], {}, samples)
        self.out = options.out or Path("runs") / self.result.run_id
        self.scope = judged_pairs(self.rules, self.indicators, self.jobs, self.kinds)
        self._indicators: dict[tuple[str, str], list[str]] = {}
        for ind, pairs in self.scope.items():
            for pair in pairs:
                self._indicators.setdefault(pair, []).append(ind)
        self.key: SigningKey | None = None
        self.ledger: Ledger | None = None
        self.recorder: ExchangeRecorder | None = None
        self.findings_log: FindingsLog | None = None
        self.write_error: str | None = None
        self.pace: Pace | None = None  # the limit on call-bound jobs, once they run

    def indicators_of(self, probe: str, device: str) -> list[str]:
        return self._indicators.get((probe, device), [])

    # -- setup --------------------------------------------------------------------------------------
    def open(self) -> None:
        """The run directory, the key, the ledger with its first record, the findings log."""
        out = self.out
        try:
            out.mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            if any(out.iterdir()):
                raise UsageError(f"{out}: the run directory exists and is not empty") from None
        except OSError as exc:
            raise UsageError(f"{out}: {exc.strerror}") from None
        self.key = load_or_create(self.options.key_dir or default_key_dir(), not_inside=out)
        secrets = [s for t in self.site.targets for s in t.secrets()]
        limit = self.config.limits.max_reply_bytes
        run_id = self.result.run_id
        self.ledger = open_ledger(
            out, secrets=secrets, run_id=run_id, max_artefact_bytes=limit, commits=GROUPED
        )
        self.recorder = ExchangeRecorder(self.ledger, run_id, self.indicators_of)
        fields = run_start_fields(
            self.config, self.options.config, self.result, self.seed, self.levels, len(self.jobs)
        )
        self.ledger.append("run_start", fields)
        self.findings_log = FindingsLog(
            out / "findings.jsonl", lambda f: self.indicators_of(f.probe, f.device)
        )

    # -- evidence, guarded ---------------------------------------------------------------------------
    def _failed_write(self, exc: BaseException) -> None:
        """The first failed write stops the run; later ones (of the same full disk) are dropped."""
        if self.write_error is None:
            reason = getattr(exc, "strerror", None) or str(exc)
            self.write_error = f"cannot write evidence in {self.out}: {reason}"
            self.stopper.stop(self.write_error)

    def record(self, exchange: Exchange) -> None:
        if self.recorder is None or self.write_error is not None:
            return
        try:
            self.recorder(exchange)
        except WRITE_ERRORS as exc:
            self._failed_write(exc)

    def keep(self, finding: Finding) -> None:
        if self.ledger is None or self.write_error is not None:
            return
        try:
            indicators = self.indicators_of(finding.probe, finding.device)
            self.ledger.append("finding", finding_fields(finding, self.result.run_id, indicators))
            self.result.findings.append(finding)  # only what the ledger holds is judged
            if self.findings_log is not None:
                self.findings_log.write(finding)
        except WRITE_ERRORS as exc:
            self._failed_write(exc)

    # -- the probes ----------------------------------------------------------------------------------
    async def collect(self) -> None:
        """Run every job; a stop cancels them (active tests restore first) and is not an error."""
        hook = self.config.active.operator_hook
        operator = HookOperator(hook) if hook else ConsoleOperator()
        ctx = make_context(self.site, self.config, self.record, operator, self.options.allow_active)
        task = asyncio.current_task()
        assert task is not None
        self.stopper.attach(task)
        try:
            if self.stopper.stopped:
                return
            progress = Progress(len(self.jobs), self.options.progress)
            self.pace = run_pace(self.config)
            async with alert_feed(ctx, self.config):
                await run_jobs(
                    self.jobs, ctx, self.config, self.keep, self.options.allow_active, progress, self.pace
                )
            self.site = ctx.site  # with what tls: auto chose for each device, for run.json
        except asyncio.CancelledError:
            if not self.stopper.stopped:
                raise
        finally:
            self.stopper.detach()
            await ctx.close()

    # -- closing -------------------------------------------------------------------------------------
    def close_ledger(self, ending: Ending) -> None:
        """The last record says how the run ended; the ledger folded into one file."""
        if self.findings_log is not None:
            with contextlib.suppress(OSError):
                self.findings_log.close()
            self.findings_log = None
        if self.ledger is None:
            return
        ledger, self.ledger = self.ledger, None
        end = {
            "run_id": self.result.run_id,
            "finished_at": datetime.now(UTC).isoformat(),
            "interrupted": ending != "complete",
            "ending": ending,
            "counts": dict(ledger.counts),
            "pace": self.pace.record() if self.pace else None,
        }
        try:
            ledger.append("run_end", end)
            ledger.flush()  # the last group: a commit that fails now stops the run like any write
        except WRITE_ERRORS as exc:
            self._failed_write(exc)
        with contextlib.suppress(*WRITE_ERRORS):
            ledger.close()  # a full disk may leave the WAL beside it: still a valid chain

    def judge(self) -> ScoreReport:
        """Verdicts, score, verdicts.yaml, score.json and run.json of what was collected."""
        result = self.result
        result.verdicts = verdicts_for(self.rules, self.catalog, self.scope, result.findings)
        result.finished_at = datetime.now(UTC)
        entries = {k: v.as_entry() for k, v in result.verdicts.items()}
        report = score(
            self.catalog, merge_verdicts((i.id for i in self.catalog), [entries]), self.options.threshold
        )
        write_outputs(self.out, self.config, result, report.as_dict())
        (self.out / "run.json").write_text(
            json.dumps(self.metadata(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        return report

    def metadata(self) -> dict[str, Any]:
        assert self.key is not None
        return run_metadata(self.config, self.options.config, self.result, self.seed) | {
            "exchanges": self.recorder.count if self.recorder else 0,
            "levels": list(self.levels),
            "threshold": self.options.threshold,
            "inventory": inventory_summary(self.site),
            "pace": self.pace.record() if self.pace else None,
            "signed_by": self.key.describe(),
        }

    def seal(self) -> None:
        assert self.key is not None
        _remove_partial(self.out)
        seal(self.out, self.key, self.metadata())


def run_session(options: RunOptions, stopper: Stopper, on_start: Callable[[Session], None]) -> Outcome:
    """Every step of a run, with the stopper's handlers already installed by the caller. Returns how
    it ended; raises UsageError (bad config, a run directory in use) or Stopped (a signal) only
    before the run directory holds anything."""
    session = Session(options, stopper)  # planning only: nothing written yet
    stopper.deferred = True  # from here a signal is noted, and the steps below look at it
    outcome = Outcome(session.out, session.result.run_id, config=session.config)
    try:
        session.open()
    except WRITE_ERRORS as exc:
        if session.ledger is None:
            raise UsageError(f"{session.out}: cannot start the run's evidence ({exc})") from None
        session._failed_write(exc)
    on_start(session)
    if not stopper.stopped:
        asyncio.run(session.collect())
    session.result.interrupted = stopper.stopped
    ending: Ending = ending_of(stopper) if stopper.stopped else "complete"
    session.close_ledger(ending)
    outcome.findings = len(session.result.findings)
    outcome.exchanges = session.recorder.count if session.recorder else 0
    if session.write_error is not None:
        # not even the outputs can be trusted to fit: the chain is left as it is, valid, for
        # `zhian seal --recover` once there is room (it writes the outputs and the report then)
        outcome.ending = "no_space"
        outcome.problem = (
            f"{session.write_error}: stopped; every record kept holds (chain valid); free space, then "
            f"`zhian seal --recover {session.out}`"
        )
        return outcome
    try:
        outcome.report = session.judge()
        stopper.deferred = stopper.stopped  # the report alone may be abandoned by a first signal
        outcome.report_path = write_report(session.out, "html", options.lang, None, None)
    except Stopped:
        outcome.notes.append("stopped while the report was written: sealed without it")
        ending = ending_of(stopper)
    except Exception as exc:  # a failing report (or outputs) must not cost the evidence
        outcome.problem = f"the report could not be written ({type(exc).__name__}: {exc}); sealed without it"
        ending = "failed"
    finally:
        stopper.deferred = True
    try:
        session.seal()
    except WRITE_ERRORS as exc:
        session._failed_write(exc)
        outcome.ending = "no_space"
        outcome.problem = (
            f"{session.write_error}: the seal could not be written; every record kept holds (chain "
            f"valid); free space, then `zhian seal --recover {session.out}`"
        )
        return outcome
    assert session.key is not None
    outcome.sealed, outcome.signer = True, session.key.describe()["fingerprint"]
    outcome.key_folder = session.key.folder
    if ending == "complete" and stopper.stopped:
        outcome.notes.append("the signal came while sealing a complete run: it is complete and sealed")
        ending = ending_of(stopper)
    outcome.ending = ending
    return outcome
