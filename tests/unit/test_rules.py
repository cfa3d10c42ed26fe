"""Rules: every indicator is either ruled or the evaluator's, every probe is used, judging is sound."""

from __future__ import annotations

from pathlib import Path

import pytest

from mapping.catalog import load_catalog
from mapping.rules import Rule, RuleError, Selector, judge, load_rules
from probes.finding import Finding, Status
from probes.registry import PROBES
from probes.targets import Target

CATALOG = load_catalog()
RULES = load_rules()


def test_every_indicator_is_ruled_or_evaluator_only_once() -> None:
    ruled = [r.indicator for r in RULES.rules]
    assert len(ruled) == len(set(ruled))
    assert set(ruled).isdisjoint(RULES.evaluator_only)
    assert set(ruled) | set(RULES.evaluator_only) == {i.id for i in CATALOG}


def test_every_referenced_probe_exists_and_every_probe_is_mapped() -> None:
    assert RULES.probes() <= set(PROBES), RULES.probes() - set(PROBES)
    assert set(PROBES) <= RULES.probes(), set(PROBES) - RULES.probes()


def test_rule_devices_can_be_probed() -> None:
    for rule in RULES.rules:
        kinds = {k for p in rule.probes for k in PROBES[p].applies_to}
        assert set(rule.devices.kinds) <= kinds, (rule.indicator, set(rule.devices.kinds) - kinds)


def test_basic_items_are_never_ratio() -> None:
    for rule in RULES.rules:
        if CATALOG.get(rule.indicator).kind == "basic":
            assert rule.combine == "all", rule.indicator


def test_duplicate_rule_is_refused(tmp_path: Path) -> None:
    text = "rules:\n  - {indicator: A2.3.4, probes: [retention], devices: {kinds: [camera]}}\n"
    (tmp_path / "a.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(RuleError, match=r"A2\.3\.4 is ruled twice"):
        load_rules(tmp_path)


def test_unknown_operator_is_refused(tmp_path: Path) -> None:
    text = "rules:\n  - {indicator: A2.3.4, probes: [retention], devices: {kinds: [camera]}, combine: eval}\n"
    (tmp_path / "a.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(RuleError, match=r"a\.yaml: rules\.0\.combine"):
        load_rules(tmp_path)


def f(status: Status, device: str = "d1", ratio: float | None = None, probe: str = "p") -> Finding:
    evidence = ("x",) if status == "pass" else ()
    return Finding(probe, device, status, "r", "detail", evidence=evidence, ratio=ratio)


RULE = Rule(indicator="X", probes=("p",), devices=Selector(kinds=("camera",)))
RATIO = RULE.model_copy(update={"combine": "ratio"})


@pytest.mark.parametrize(
    ("rule", "findings", "basic", "status", "ratio"),
    [
        (RULE, [f("pass"), f("pass", "d2")], False, "pass", None),
        (RULE, [f("pass"), f("fail", "d2")], False, "fail", None),
        (RULE, [f("pass"), f("error", "d2")], False, "not_assessed", None),
        (RULE, [f("fail"), f("error", "d2")], False, "fail", None),
        (RULE, [f("pass"), f("not_assessed", "d2")], False, "pass", None),
        (RULE, [f("not_assessed")], False, "not_assessed", None),
        (RULE, [], False, "not_assessed", None),
        (RATIO, [f("pass"), f("fail", "d2"), f("pass", "d3"), f("fail", "d4")], False, "partial", 0.5),
        (RATIO, [f("pass"), f("partial", "d2", 0.5)], False, "partial", 0.75),
        (RATIO, [f("pass"), f("fail", "d2")], True, "fail", None),
        (RATIO, [f("fail"), f("fail", "d2")], False, "fail", None),
        (RULE, [f("pass", probe="other")], False, "not_assessed", None),
    ],
)
def test_judge(rule: Rule, findings: list[Finding], basic: bool, status: str, ratio: float | None) -> None:
    verdict = judge(rule, findings, basic)
    assert verdict.status == status and verdict.ratio == ratio


def test_supporting_rules_never_decide() -> None:
    rule = RULE.model_copy(update={"strength": "supports"})
    verdict = judge(rule, [f("fail")], basic=False)
    assert verdict.status == "not_assessed" and verdict.note.startswith("supporting facts:")


def test_selector() -> None:
    cam = Target("c", "camera", "onvif", "127.0.0.1", 1, "gate", tags={"key_location": True})
    button = Target("b", "mqtt_device", "mqtt", "127.0.0.1", 1, "homes", params={"type": "emergency_button"})
    kinds = {"gate": "perimeter", "homes": "residence"}
    assert Selector(kinds=("camera",), area_kinds=("perimeter",)).matches(cam, kinds)
    assert not Selector(kinds=("camera",), area_kinds=("garage",)).matches(cam, kinds)
    assert Selector(kinds=("camera",), tags={"key_location": True}).matches(cam, kinds)
    assert Selector(kinds=("mqtt_device", "camera"), types=("emergency_button",)).matches(button, kinds)
    assert Selector(kinds=("mqtt_device", "camera"), types=("emergency_button",)).matches(cam, kinds)
    assert not Selector(kinds=("mqtt_device",), types=("intercom",)).matches(button, kinds)


def test_the_note_lists_each_device_and_reason_once() -> None:
    """A rule's two probes that both skip a device list it once, not side by side."""
    rule = RULE.model_copy(update={"probes": ("p", "q"), "strength": "supports"})
    findings = [f("not_assessed", d, probe=p) for d in ("d1", "d2") for p in ("p", "q")]
    note = judge(rule, findings, basic=False).note
    assert note.count("d1:") == 1 and note.count("d2:") == 1, note
