"""The report on one terminal screen: grade, score per level, coverage and the problems found.

For `make demo` and for an inspector at the site: the whole report stays in the HTML; this is what
to read before opening it.
"""

from __future__ import annotations

from zhian.report.messages import Messages, messages
from zhian.report.model import LevelSummary, Report
from zhian.report.textwidth import pad

MAX_PROBLEMS = 15
MAX_DEVICES = 6


def level_state(level: LevelSummary) -> str:
    """The message key of a level's state: passed, score reached but basics pending, or not passed."""
    if level.passed:
        return "level.passed"
    return "level.pending" if level.meets_threshold else "level.not_passed"


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
    for level in summary.levels:
        state = level_state(level)
        lines.append(t("screen.level", level=level.level, total=level.total, max=level.max, state=t(state)))
        if level.basic_failed:
            lines.append(t("screen.gates", items=", ".join(level.basic_failed)))
    machine = sum(c.machine_decided.indicators for c in report.coverage)
    points = sum(c.machine_decided.points for c in report.coverage)
    waiting = sum(c.waiting.indicators for c in report.coverage)
    waiting_points = sum(c.waiting.points for c in report.coverage)
    lines.append(
        t("screen.coverage", machine=machine, points=points, waiting=waiting, waiting_points=waiting_points)
    )
    lines += sample_lines(report, t)
    problems = report.problems.items
    lines.append(t("screen.problems", n=len(problems)))
    for problem in problems[:MAX_PROBLEMS]:
        devices = sorted({f.device for f in problem.findings})
        reasons = sorted({t.reason(f.reason) for f in problem.findings})
        where = ", ".join(devices[:3]) + (" …" if len(devices) > 3 else "")
        status = pad(t("status." + problem.status), 8)
        lines.append(f"  {status} {problem.indicator:<7} {pad(where, 36)} {', '.join(reasons)}")
    if len(problems) > MAX_PROBLEMS:
        lines.append(t("screen.more", n=len(problems) - MAX_PROBLEMS))
    unread = report.problems.unread
    names = ", ".join(u.device for u in unread[:MAX_DEVICES]) + (" …" if len(unread) > MAX_DEVICES else "")
    lines.append(t("screen.unread", n=len(unread), devices=names or t("screen.none")))
    return "\n".join(lines) + "\n"
