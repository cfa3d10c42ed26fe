"""`--fail-on fail|gate|grade`: an exit code a CI job can act on, computed from a score.

- fail:  an indicator's result is fail;
- gate:  a basic requirement failed (6.2: it gates its first-level indicator's scored items);
- grade: the target grade is out of reach on this evidence: a basic requirement failed in a level
  the grade needs (9.3), or such a level cannot pass even if every open item earned its points.
  Indicators still waiting for the evaluator do not trip it, so a machine run can use it.
"""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal

from mapping.catalog import LEVELS
from scorer.score import GRADE_NEEDS, ScoreReport, meets, number
from zhian.cli.help import EXIT_FAIL_ON, EXIT_OK

CONDITIONS = ("fail", "gate", "grade")


def reasons(report: ScoreReport, condition: str, target: str) -> list[str]:
    """Why the condition holds; empty when it does not."""
    if condition == "fail":
        return [
            f"{s.indicator.id} failed"
            for level in report.levels
            for s in level.indicators
            if s.verdict.final is not None and s.verdict.final.status == "fail"
        ]
    if condition == "gate":
        return [
            f"{i} failed: a basic requirement (6.2)" for level in report.levels for i in level.basic_failed
        ]
    out: list[str] = []
    for lv in GRADE_NEEDS[target]:
        level = report.level(lv)
        out += [f"grade {target} out of reach: {i} failed (9.3)" for i in level.basic_failed]
        best = level.total + sum(
            (s.indicator.points or Decimal(0) for s in level.indicators if s.open), Decimal(0)
        )
        if not meets(best, report.threshold):
            reach = f"{number(best)} of {number(level.max)}"
            out.append(f"grade {target} out of reach: level {lv} can reach at most {reach}")
    return out


def fail_on(report: ScoreReport, condition: str | None, target: str) -> int:
    """The exit code for `--fail-on`, with its reasons on stderr."""
    if condition is None:
        return EXIT_OK
    found = reasons(report, condition, target)
    for line in found:
        print(f"zhian: fail-on {condition}: {line}", file=sys.stderr)
    return EXIT_FAIL_ON if found else EXIT_OK


def add_fail_on(p: argparse.ArgumentParser, *, target_option: bool = True) -> None:
    p.add_argument(
        "--fail-on",
        choices=CONDITIONS,
        help="exit 3 when: fail (an indicator failed), gate (a basic requirement failed, 6.2), "
        "grade (the target grade is out of reach: 9.3, or a needed level cannot pass any more)",
    )
    if target_option:
        p.add_argument(
            "--target",
            choices=LEVELS,
            default="C",
            help="the grade --fail-on grade checks (default C; `zhian run` takes the config's)",
        )
