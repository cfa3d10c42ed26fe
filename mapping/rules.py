"""Rules from probe findings to indicator verdicts, read from `mapping/rules/*.yaml`.

A rule ties an indicator to the probes that bear on it, the devices they apply to (by kind, area,
area kind or tag), how the per-device findings combine (`all` or `ratio`), whether 7.4 sampling
applies, and how strong the machine's word is: `decides` (the machine proposes pass / fail /
partial) or `supports` (objective facts for the evaluator, who decides). Indicators no probe can
judge are listed under `evaluator_only` with the reason. The set of operators is closed: no code
in the data.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mapping.catalog import SAFE_LOADER
from probes.finding import Finding
from probes.targets import Target, TargetKind

Combine = Literal["all", "ratio"]
Status = Literal["pass", "fail", "partial", "not_assessed", "error"]
Strength = Literal["decides", "supports"]


class RuleError(Exception):
    """A rules file that cannot be used; names the file and the rule."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Selector(_Strict):
    """Which devices a rule looks at; every given criterion must hold."""

    kinds: tuple[TargetKind, ...]
    areas: tuple[str, ...] = ()
    area_kinds: tuple[str, ...] = ()
    tags: dict[str, str | bool | int] = Field(default_factory=dict)
    types: tuple[str, ...] = ()  # MQTT child device types (smoke_detector ...); other kinds pass

    def matches(self, target: Target, area_kinds: Mapping[str, str]) -> bool:
        if target.kind not in self.kinds:
            return False
        if self.areas and target.area not in self.areas:
            return False
        if self.area_kinds and area_kinds.get(target.area) not in self.area_kinds:
            return False
        if self.types and target.kind == "mqtt_device" and target.params.get("type") not in self.types:
            return False
        return all(target.tags.get(k) == v for k, v in self.tags.items())


class Rule(_Strict):
    indicator: str
    probes: tuple[str, ...] = Field(min_length=1)
    devices: Selector
    combine: Combine = "all"
    strength: Strength = "decides"
    sampled: bool = False  # 7.4 applies: a homogeneous set, sampled on inspections
    note: str = ""


class EvaluatorOnly(_Strict):
    indicators: tuple[str, ...] = Field(min_length=1)
    reason: str = Field(min_length=1)


class RulesFile(_Strict):
    rules: list[Rule] = Field(default_factory=list)
    evaluator_only: list[EvaluatorOnly] = Field(default_factory=list)


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    evaluator_only: Mapping[str, str]  # indicator -> why no probe can judge it

    def for_indicator(self, indicator: str) -> Rule | None:
        return next((r for r in self.rules if r.indicator == indicator), None)

    def probes(self) -> set[str]:
        return {p for r in self.rules for p in r.probes}


def load_rules(directory: Path | None = None) -> RuleSet:
    rules: list[Rule] = []
    evaluator_only: dict[str, str] = {}
    for name, text in _rule_texts(directory):
        try:
            doc = RulesFile.model_validate(yaml.load(text, Loader=SAFE_LOADER) or {})
        except yaml.YAMLError as exc:
            raise RuleError(f"{name}: {exc}") from None
        except ValidationError as exc:
            err = exc.errors()[0]
            raise RuleError(f"{name}: {'.'.join(map(str, err['loc']))}: {err['msg']}") from None
        rules.extend(doc.rules)
        for group in doc.evaluator_only:
            for ind in group.indicators:
                evaluator_only[ind] = group.reason
    seen: set[str] = set()
    for rule in rules:
        if rule.indicator in seen or rule.indicator in evaluator_only:
            raise RuleError(f"mapping/rules: {rule.indicator} is ruled twice")
        seen.add(rule.indicator)
    return RuleSet(tuple(rules), evaluator_only)


def _rule_texts(directory: Path | None) -> Iterable[tuple[str, str]]:
    if directory is not None:
        for path in sorted(directory.glob("*.yaml")):
            yield str(path), path.read_text(encoding="utf-8")
        return
    folder = resources.files("mapping") / "rules"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            yield f"mapping/rules/{entry.name}", entry.read_text(encoding="utf-8")


@dataclass(frozen=True)
class MachineVerdict:
    """The machine's proposal for one indicator, in the shape `zhian score` reads."""

    indicator: str
    status: Status
    note: str
    ratio: float | None = None
    findings: tuple[Finding, ...] = field(default=(), repr=False)

    def as_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"status": self.status, "source": "machine", "note": self.note}
        if self.ratio is not None:
            entry["ratio"] = round(self.ratio, 4)
        return entry


def judge(rule: Rule, findings: Sequence[Finding], basic: bool) -> MachineVerdict:
    """Combine the findings of a rule's probes on its devices into one proposal.

    `not_assessed` findings (nothing for that probe to judge there, or an active test not
    permitted) neither help nor hurt; an `error` (we tried and could not judge) keeps the
    indicator open unless something already failed: never a pass on partial evidence.
    """
    relevant = tuple(f for f in findings if f.probe in rule.probes)
    tally = Tally()
    for n, f in enumerate(relevant):
        tally.add(n, f)
    status, ratio, note = tally.verdict(rule, basic)
    return MachineVerdict(rule.indicator, status, note, ratio, relevant)


class Tally:
    """What `judge` reads of a rule's findings, kept up to date one finding at a time: the counts by
    status, the ratios that are not a plain pass, the problems. A monitor re-judges an indicator over
    50,000 devices without a pass over every finding (only over the fails and partials' ratios)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.ratios: dict[Hashable, float] = {}  # decided, not pass: what each earns
        self.problems: dict[Hashable, str] = {}  # not pass: "device: reason", in the order last set

    def add(self, key: Hashable, f: Finding) -> None:
        self.counts[f.status] = self.counts.get(f.status, 0) + 1
        if f.status in ("fail", "partial"):
            self.ratios[key] = f.ratio or 0.0
        if f.status != "pass":
            self.problems[key] = f"{f.device}: {f.reason}"

    def remove(self, key: Hashable, f: Finding) -> None:
        left = self.counts[f.status] - 1
        if left:
            self.counts[f.status] = left
        else:
            del self.counts[f.status]
        self.ratios.pop(key, None)
        self.problems.pop(key, None)

    def verdict(self, rule: Rule, basic: bool) -> tuple[Status, float | None, str]:
        c = self.counts
        summary = self.summary()
        if rule.strength == "supports":
            return "not_assessed", None, f"supporting facts: {summary}"
        decided = c.get("pass", 0) + c.get("fail", 0) + c.get("partial", 0)
        errors, failed = c.get("error", 0), c.get("fail", 0)
        if not decided and not errors:
            return "not_assessed", None, summary
        if failed and (rule.combine == "all" or basic):
            return "fail", None, summary
        if errors and not failed:
            return "not_assessed", None, summary
        score = c.get("pass", 0) + sum(self.ratios.values())
        if score == decided and not errors:
            return "pass", None, summary
        if basic or score == 0:
            return "fail", None, summary
        return "partial", score / (decided + errors), summary

    def summary(self) -> str:
        if not self.counts:
            return "no device in scope was probed"
        head = ", ".join(f"{n} {s}" for s, n in sorted(self.counts.items()))
        # each distinct "device: reason" once: a rule's probes often agree on one device (two door
        # probes both "not_onvif"), and a run ordered device by device lists them side by side
        problems: list[str] = []
        for problem in self.problems.values():  # stops at 8: a monitor's tally holds thousands
            if problem not in problems:
                problems.append(problem)
                if len(problems) == 8:
                    break
        return head + ("; " + "; ".join(problems) if problems else "")
