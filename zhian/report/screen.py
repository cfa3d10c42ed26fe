"""The report on one terminal screen: grade, score per level, coverage and the problems found.

For `make demo` and for an inspector at the site: the whole report stays in the HTML; this is what
to read before opening it.
"""

from __future__ import annotations

from zhian.report.messages import Messages, messages
from zhian.report.model import Fix, LevelSummary, Report

MAX_PROBLEMS = 15
MAX_DEVICES = 6


def level_state(level: LevelSummary) -> str:
    """The message key of a level's state: passed, score reached but basics pending, or not passed."""
    if level.passed:
        return "level.passed"
    return "level.pending" if level.meets_threshold else "level.not_passed"


def waiting(r: Report) -> tuple[int, float]:
    """Indicators and points still waiting for the evaluator: while any wait, scores are provisional."""
    return sum(c.waiting.indicators for c in r.coverage), sum(c.waiting.points for c in r.coverage)


def fix_line(t: Messages, f: Fix) -> str:
    gate = t("fix.gate", items=", ".join(f.gates)) if f.gates else ""
    return t(
        "fix.line",
        rank=f.rank,
        cause=t.reason(f.reason),
        device=f.fix_on,
        gate=gate,
        n=len(f.indicators),
        points=f"{f.points:g}",
    )


def sample_lines(report: Report, t: Messages) -> list[str]:
    """Whether a 7.4 sample was taken, of how many, with which seed: a summary must never hide it."""
    run = report.run
    if run.sampling_mode != "inspection":
        return [t("screen.sampling.every")]
    groups = [
        t(
            "screen.sampling.group",
            size=g.size,
            population=g.population,
            group=t("kind." + g.group) if t.has("kind." + g.group) else g.group,
            rule=g.rule.split(":")[0],
        )
        for g in report.overview.samples
        if g.size < g.population
    ]
    if not groups:
        return [t("screen.sampling.every")]
    return [t("screen.sampling.sampled", seed=run.sampling_seed, groups="; ".join(groups))]


def render_screen(report: Report) -> str:
    t = messages(report.lang)
    summary, community = report.summary, report.overview.community
    grade = t("grade.value", grade=summary.grade) if summary.grade else t("grade.none")
    lines = [
        t("screen.title", community=community.name, run_id=report.run.run_id, tool=report.run.tool),
        t(
            "screen.grade",
            grade=grade,
            target=community.target_level,
            threshold="> 80" if summary.threshold == "gt" else "≥ 80",
        ),
    ]
    if report.run.interrupted:
        lines.append(t("run.interrupted"))
    if report.run.recovered:  # sealed after a kill: said on the first screen, with the reason
        lines.append(t("run.recovered", reason=report.run.recovery_reason or "—"))
    n_wait, wait_points = waiting(report)
    if n_wait:
        lines.append(t("first.provisional_explain", waiting=n_wait, points=f"{wait_points:g}"))
    for level in summary.levels:
        state = level_state(level)
        lines.append(t("screen.level", level=level.level, total=level.total, max=level.max, state=t(state)))
        if level.basic_failed:
            lines.append(t("screen.gates", items=", ".join(level.basic_failed)))
    machine = sum(c.machine_decided.indicators for c in report.coverage)
    points = sum(c.machine_decided.points for c in report.coverage)
    lines.append(
        t("screen.coverage", machine=machine, points=points, waiting=n_wait, waiting_points=wait_points)
    )
    lines += sample_lines(report, t)
    fixes = report.problems.fixes
    touched = len({i for f in fixes for i in f.indicators})
    lines.append(t("screen.fixes", n=len(fixes), indicators=touched) if fixes else t("first.none"))
    for fix in fixes[:MAX_PROBLEMS]:
        lines.append("  " + fix_line(t, fix))
        lines.append("       " + ", ".join(fix.indicators))
    if len(fixes) > MAX_PROBLEMS:
        lines.append(t("screen.more", n=len(fixes) - MAX_PROBLEMS))
    unread = report.problems.unread
    names = ", ".join(u.device for u in unread[:MAX_DEVICES]) + (" …" if len(unread) > MAX_DEVICES else "")
    lines.append(t("screen.unread", n=len(unread), devices=names or t("screen.none")))
    return "\n".join(lines) + "\n"
