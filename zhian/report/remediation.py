"""What would fix a finding, read from remediation.yaml (data, so evaluators can word it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import yaml

from zhian.report.model import Lang

LANGS: tuple[Lang, ...] = ("zh", "en")


@dataclass(frozen=True)
class Remedies:
    generic: Mapping[str, str]
    reasons: Mapping[str, Mapping[str, str]]
    fix_on: Mapping[str, str] = field(default_factory=dict)

    def text(self, probe: str, reason: str, lang: Lang) -> str:
        """`probe.reason` first, then the reason, then the generic text."""
        entry = self.reasons.get(f"{probe}.{reason}") or self.reasons.get(reason) or self.generic
        return entry[lang]


def _entry(raw: object, where: str) -> dict[str, str]:
    if (
        not isinstance(raw, Mapping)
        or set(raw) != set(LANGS)
        or not all(isinstance(raw[k], str) for k in LANGS)
    ):
        raise ValueError(f"zhian/report/remediation.yaml: {where} needs exactly zh and en texts")
    return {k: str(raw[k]) for k in LANGS}


@cache
def load_remedies() -> Remedies:
    doc = yaml.safe_load((resources.files("zhian.report") / "remediation.yaml").read_text(encoding="utf-8"))
    reasons = {str(k): _entry(v, str(k)) for k, v in (doc.get("reasons") or {}).items()}
    fix_on = {str(k): str(v) for k, v in (doc.get("fix_on") or {}).items()}
    return Remedies(_entry(doc.get("generic"), "generic"), reasons, fix_on)
