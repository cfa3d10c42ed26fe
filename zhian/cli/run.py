"""`zhian run`: evaluate a live site from its config and write verdicts, score and findings."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

from mapping.catalog import LEVELS, load_catalog
from mapping.rules import load_rules
from probes.finding import Finding
from probes.registry import PROBES
from scorer.results import merge_verdicts
from scorer.score import score
from zhian.cli.failon import add_fail_on, fail_on
from zhian.cli.help import EXIT_FAIL_ON, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, SubParsers, command
from zhian.configcheck import check_config
from zhian.engine.alert_feed import alert_feed
from zhian.engine.inventory import area_kinds, build_site, inventory_summary
from zhian.engine.operator import ConsoleOperator, HookOperator
from zhian.engine.run import (
    FindingsLog,
    Progress,
    RunResult,
    make_context,
    new_run_id,
    plan_jobs,
    run_jobs,
    run_metadata,
    run_start_fields,
    seed_for,
    verdicts_for,
    with_seed,
    write_outputs,
)
from zhian.errors import UsageError
from zhian.evidence.keys import default_key_dir, load_or_create
from zhian.evidence.ledger import ExchangeRecorder, finding_fields, open_ledger
from zhian.evidence.manifest import seal
from zhian.report.tables import score_table
from zhian.report.write import write_report


def cmd_run(args: argparse.Namespace) -> int:
    checked = check_config(args.config)  # everything, before the run directory exists
    config = checked.config
    site = build_site(config, checked.base)
    catalog = load_catalog()
    rules = load_rules()
    levels = (args.level,) if args.level else LEVELS
    indicators = [i.id for lv in levels for i in catalog.level(lv)]
    seed = seed_for(config)
    config = with_seed(config, seed)
    jobs, samples = plan_jobs(rules, indicators, site, PROBES, area_kinds(config), config.sampling.mode, seed)
    run_id = new_run_id()
    out: Path = args.out or Path("runs") / run_id
    try:
        out.mkdir(parents=True, exist_ok=False)
    except FileExistsError:
        if any(out.iterdir()):
            raise UsageError(f"{out}: the run directory exists and is not empty") from None
    except OSError as exc:
        raise UsageError(f"{out}: {exc.strerror}") from None

    probe_indicators: dict[tuple[str, str], list[str]] = {}
    for ind in indicators:
        rule = rules.for_indicator(ind)
        for job in jobs:
            if rule and job.spec.id in rule.probes and rule.devices.matches(job.target, area_kinds(config)):
                probe_indicators.setdefault((job.spec.id, job.target.id), []).append(ind)

    def indicators_of(probe: str, device: str) -> list[str]:
        return probe_indicators.get((probe, device), [])

    key = load_or_create(args.key_dir or default_key_dir(), not_inside=out)
    secrets = [s for t in site.targets for s in t.secrets()]
    ledger = open_ledger(
        out, secrets=secrets, run_id=run_id, max_artefact_bytes=config.limits.max_reply_bytes
    )
    exchanges = ExchangeRecorder(ledger, run_id, indicators_of)
    findings_log = FindingsLog(out / "findings.jsonl", lambda f: indicators_of(f.probe, f.device))
    hook = config.active.operator_hook
    operator = HookOperator(hook) if hook else ConsoleOperator()
    ctx = make_context(site, config, exchanges, operator, args.allow_active)
    result = RunResult(run_id, [], {}, samples)
    ledger.append("run_start", run_start_fields(config, args.config, result, seed, levels, len(jobs)))
    print(
        f"zhian run {run_id}: {len(jobs)} probe jobs on {len(site.targets)} devices -> {out}", file=sys.stderr
    )

    async def main() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)

        def keep(finding: Finding) -> None:
            result.findings.append(finding)
            findings_log.write(finding)
            indicators = indicators_of(finding.probe, finding.device)
            ledger.append("finding", finding_fields(finding, run_id, indicators))

        try:
            async with alert_feed(ctx, config):
                await run_jobs(jobs, ctx, config, keep, args.allow_active, Progress(len(jobs), True))
        except asyncio.CancelledError:
            result.interrupted = True
        finally:
            await ctx.close()

    try:
        asyncio.run(main())
    finally:
        findings_log.close()
        ledger.append(
            "run_end",
            {
                "run_id": run_id,
                "finished_at": datetime.now(UTC).isoformat(),
                "interrupted": result.interrupted,
                "counts": dict(ledger.counts),
            },
        )
        ledger.close()
    result.verdicts = verdicts_for(rules, catalog, indicators, result.findings, jobs, area_kinds(config))
    result.finished_at = datetime.now(UTC)
    entries = {k: v.as_entry() for k, v in result.verdicts.items()}
    report = score(catalog, merge_verdicts((i.id for i in catalog), [entries]), args.threshold)
    write_outputs(out, config, result, report.as_dict())
    meta = run_metadata(config, args.config, result, seed) | {
        "exchanges": exchanges.count,
        "levels": list(levels),
        "threshold": args.threshold,
        "inventory": inventory_summary(ctx.site),
        "signed_by": key.describe(),
    }
    (out / "run.json").write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    report_path = write_report(out, "html", args.lang, None, None)
    seal(out, key, meta)
    sys.stdout.write(score_table(report))
    state = "interrupted; kept what was collected" if result.interrupted else "complete"
    print(f"run {state}: {len(result.findings)} findings, {exchanges.count} exchanges in {out}")
    print(f"report: {report_path}")
    print(f"sealed: {out / 'manifest.json'} signed by {key.describe()['fingerprint']} (key in {key.folder})")
    if result.interrupted:
        return EXIT_INTERRUPTED
    return fail_on(report, args.fail_on, config.community.target_level)


KEY_DIR_HELP = "where the signing key lives (default: ZHIAN_KEY_DIR, else ~/.local/share/zhian/keys)"


def add_parser(sub: SubParsers) -> None:
    p = command(
        sub,
        "run",
        "evaluate a live site: probes, verdicts, score, findings, report, sealed evidence",
        [
            ("zhian run --config site.yaml", "passive checks only, into runs/<run id>"),
            (
                "zhian run --config site.yaml --allow-active --out runs/2026-12",
                "with the permitted active tests",
            ),
            ("zhian run --config site.yaml --fail-on gate", "for CI: exit 3 when a basic requirement failed"),
        ],
        (EXIT_OK, EXIT_USAGE, EXIT_FAIL_ON, EXIT_INTERRUPTED),
    )
    p.add_argument(
        "--config", type=Path, required=True, help="the site's config (check it with `zhian config check`)"
    )
    p.add_argument("--out", type=Path, help="run directory, new or empty (default runs/<run id>)")
    p.add_argument(
        "--level", choices=LEVELS, help="evaluate one level's indicators only (default: A, B and C)"
    )
    p.add_argument(
        "--allow-active",
        action="store_true",
        help="permit the active tests the config's active.allow lists (they always restore the site)",
    )
    p.add_argument(
        "--threshold",
        choices=("gt", "ge"),
        default="gt",
        help="gt: a level passes above 80 (9.1, default); ge: from 80 (9.2 '80 以上')",
    )
    p.add_argument("--key-dir", type=Path, help=KEY_DIR_HELP)
    p.add_argument("--lang", choices=("zh", "en"), default="zh", help="language of the run's report")
    add_fail_on(p, target_option=False)
    p.set_defaults(func=cmd_run)
