"""What a finding says, in the report's language: its reason code's phrase, its sentence filled
from its facts, and the machine's verdict line, all from the catalogues (never the probe's English
or a Python error message, which stay in findings.jsonl and the evidence appendix)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from zhian.report.messages import Messages
from zhian.report.model import Lang
from zhian.report.rundir import FindingIn

STATUS_ORDER = ("fail", "partial", "error", "not_assessed", "pass")


def _value(t: Messages, key: str, value: Any) -> str:
    if key == "effect" and isinstance(value, str) and t.has("effect." + value):
        return t("effect." + value)
    if isinstance(value, float):
        return f"{round(value, 1):g}"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def finding_detail(t: Messages, lang: Lang, f: FindingIn) -> str:
    """The finding's sentence in the report's language. Chinese: the catalogue's template for its
    reason filled from its facts, else the reason's phrase. English: the probe's own sentence, but
    for a check that could not be completed the catalogue's plain sentence (never a Python error)."""
    key = "detail." + f.reason
    templated = t.has(key) and (lang == "zh" or f.status == "error" or not f.detail)
    if templated:
        values: Mapping[str, Any] = {k: _value(t, k, v) for k, v in f.facts.items()} | {"device": f.device}
        return t.fill(key, values)
    if lang == "en":
        return f.detail or t.reason(f.reason)
    return t.reason(f.reason) + "。"


def localised(t: Messages, lang: Lang, findings: Iterable[FindingIn]) -> tuple[FindingIn, ...]:
    return tuple(f.model_copy(update={"detail": finding_detail(t, lang, f)}) for f in findings)


def verdict_line(t: Messages, findings: Iterable[FindingIn], supporting: bool = False) -> str:
    """The machine's verdict note ("1 fail, 7 pass") in the report's language."""
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.status] = counts.get(f.status, 0) + 1
    if not counts:
        return t("verdict.none")
    parts = [t("verdict.count", n=counts[s], status=t("status." + s)) for s in STATUS_ORDER if s in counts]
    return t("verdict.supporting" if supporting else "verdict.counts", counts=", ".join(parts))
