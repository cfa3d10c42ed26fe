"""Waivers in the evaluator's file, and what they do to the score.

A waiver names an indicator, the justification, who approved it and the date it expires:

    waivers:
      - indicator: A2.3.4
        justification: NVR replaced on 2026-11-10; 90 days of video cannot exist before 2027-02-08
        approver: 李工 (property security manager)
        expires: 2027-02-28

The standard knows no "not applicable": every level counts 100 points and every basic requirement
must be met (6.2, 9.3). So a waiver can neither remove an indicator nor earn its points. What it does,
while in force (up to and including its expiry date, judged on the date of the file that holds it):
it sets aside the machine's `fail` on that indicator, which is then scored as if the machine had not
judged it. A basic requirement becomes pending (no 6.2 gate and no 9.3 ineligibility from the machine's
finding, but no pass either: the level cannot pass until the evaluator decides it); a scored item
becomes open with 0 points. The evaluator keeps the last word (7.1): an evaluator verdict on the
indicator decides, and the waiver is moot. A waiver on an indicator the machine did not fail changes
nothing (a pass stays a pass, a partial keeps its points), and an expired one no longer applies; the
report says which of these happened to each waiver.

Pure: no I/O, so that `zhian score` and `zhian report` set aside exactly the same verdicts.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Literal

from scorer.results import Result, Verdict

WaiverState = Literal["applied", "expired", "superseded", "no_effect"]
WAIVER_KEYS = frozenset({"indicator", "justification", "approver", "expires"})


class WaiverError(ValueError):
    """A waiver entry that cannot be used; the message names the entry."""


@dataclass(frozen=True)
class Waiver:
    indicator: str
    justification: str
    approver: str
    expires: date

    def in_force(self, on: date) -> bool:
        return on <= self.expires


@dataclass(frozen=True)
class WaiverOutcome:
    """What a waiver did on the day it was judged."""

    waiver: Waiver
    state: WaiverState
    on: date


def parse_date(value: object, where: str) -> date:
    """A YAML date (2027-02-28) or the same as ISO text."""
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise WaiverError(f"{where}: {value!r} is not a date (YYYY-MM-DD)")


def parse_waivers(raw: object, known: Container[str]) -> tuple[Waiver, ...]:
    """The `waivers:` list of a file; refuses unknown keys, empty texts and a second waiver per indicator."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise WaiverError("waivers: expected a list of {indicator, justification, approver, expires}")
    out: list[Waiver] = []
    for n, entry in enumerate(raw, 1):
        where = f"waiver {n}"
        if not isinstance(entry, Mapping):
            raise WaiverError(f"{where}: expected a mapping, got {entry!r}")
        ind = entry.get("indicator")
        where = f"waiver {n} ({ind})" if ind is not None else where
        unknown = set(map(str, entry)) - WAIVER_KEYS
        missing = WAIVER_KEYS - set(map(str, entry))
        if unknown or missing:
            raise WaiverError(f"{where}: missing keys {sorted(missing)}, unknown keys {sorted(unknown)}")
        if not isinstance(ind, str) or ind not in known:
            raise WaiverError(f"{where}: unknown indicator id")
        texts = {k: entry[k] for k in ("justification", "approver")}
        for key, text in texts.items():
            if not isinstance(text, str) or not text.strip():
                raise WaiverError(f"{where}: {key} must be non-empty text")
        if any(w.indicator == ind for w in out):
            raise WaiverError(f"{where}: a second waiver for {ind}")
        expires = parse_date(entry["expires"], f"{where}: expires")
        out.append(Waiver(ind, texts["justification"].strip(), texts["approver"].strip(), expires))
    return tuple(out)


def assess(waivers: Sequence[Waiver], verdicts: Mapping[str, Verdict], on: date) -> tuple[WaiverOutcome, ...]:
    """What each waiver does to these verdicts on this day (see the module's text)."""
    out: list[WaiverOutcome] = []
    for w in waivers:
        verdict = verdicts.get(w.indicator, Verdict())
        state: WaiverState
        if not w.in_force(on):
            state = "expired"
        elif verdict.evaluator is not None:
            state = "superseded"
        elif verdict.machine is not None and verdict.machine.status == "fail":
            state = "applied"
        else:
            state = "no_effect"
        out.append(WaiverOutcome(w, state, on))
    return tuple(out)


def apply(verdicts: Mapping[str, Verdict], outcomes: Sequence[WaiverOutcome]) -> dict[str, Verdict]:
    """The verdicts to score: each applied waiver's machine `fail` becomes `not_assessed`, its reason kept."""
    out = dict(verdicts)
    for o in outcomes:
        if o.state != "applied":
            continue
        machine = out[o.waiver.indicator].machine
        assert machine is not None  # "applied" means the machine failed it
        w = o.waiver
        note = f"waived until {w.expires} by {w.approver}: {w.justification}; the machine proposed fail"
        note += f" ({machine.note})" if machine.note else ""
        set_aside = Result("not_assessed", "machine", None, note)
        out[w.indicator] = replace(out[w.indicator], machine=set_aside)
    return out
