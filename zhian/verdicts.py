"""Reading verdict files (the `zhian score` format) from disk.

Besides `verdicts:`, an evaluator's file may carry what the report's part 5 (9.5) and label (8.2)
need: `evaluator` (the evaluation body), `evaluators` (names), `issuer`, `date`, `label_number`; and
`waivers:` (see scorer/waivers.py). `zhian score` applies the waivers exactly as the report
does, so the two never disagree on a number.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml

from mapping.catalog import Catalog
from scorer.results import ResultError, Verdict, merge_verdicts
from scorer.waivers import Waiver, WaiverError, WaiverOutcome, apply, assess, parse_date, parse_waivers
from zhian.errors import UsageError

TEXT_KEYS = ("community", "evaluator", "issuer", "label_number")
TOP_KEYS = frozenset({"verdicts", "waivers", "date", "evaluators", *TEXT_KEYS})


@dataclass(frozen=True)
class Header:
    """Who evaluated, when, and for whom: the file's own fields beside its verdicts."""

    community: str | None = None
    evaluator: str | None = None  # the evaluation body (评价机构)
    issuer: str | None = None  # who signs the report for the body (签发负责人)
    label_number: str | None = None  # 评价标识编号 (8.2)
    date: date | None = None
    evaluators: tuple[str, ...] = ()


@dataclass(frozen=True)
class VerdictFile:
    path: Path
    verdicts: Mapping[str, object]
    header: Header
    waivers: tuple[Waiver, ...]


@dataclass(frozen=True)
class Evaluation:
    """Several files merged: the verdicts as written, what each waiver did, and the verdicts to score."""

    files: tuple[VerdictFile, ...]
    verdicts: dict[str, Verdict]
    waivers: tuple[WaiverOutcome, ...]
    scored: dict[str, Verdict]


def _read_yaml(path: Path) -> Mapping[str, object]:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise UsageError(f"{path}:{where} not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(doc, Mapping) or not isinstance(doc.get("verdicts", {}), Mapping):
        raise UsageError(f"{path}: expected a mapping with a 'verdicts' mapping at the top")
    unknown = set(doc) - TOP_KEYS
    if unknown:
        raise UsageError(f"{path}: unknown top-level keys {sorted(map(str, unknown))}")
    return doc


def _header(path: Path, doc: Mapping[str, object]) -> Header:
    texts: dict[str, str | None] = {}
    for key in TEXT_KEYS:
        value = doc.get(key)
        if value is not None and not isinstance(value, str | int):
            raise UsageError(f"{path}: {key} must be text")
        texts[key] = None if value is None else str(value)
    names = doc.get("evaluators") or []
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise UsageError(f"{path}: evaluators must be a list of names")
    try:
        when = None if doc.get("date") is None else parse_date(doc["date"], "date")
    except WaiverError as exc:
        raise UsageError(f"{path}: {exc}") from None
    return Header(
        community=texts["community"],
        evaluator=texts["evaluator"],
        issuer=texts["issuer"],
        label_number=texts["label_number"],
        date=when,
        evaluators=tuple(names),
    )


def read_verdict_file(path: Path, known: Container[str]) -> VerdictFile:
    doc = _read_yaml(path)
    verdicts = doc.get("verdicts") or {}
    assert isinstance(verdicts, Mapping)  # checked by _read_yaml
    try:
        waivers = parse_waivers(doc.get("waivers"), known)
    except WaiverError as exc:
        raise UsageError(f"{path}: {exc}") from None
    return VerdictFile(path, {str(k): v for k, v in verdicts.items()}, _header(path, doc), waivers)


def load_evaluation(catalog: Catalog, paths: Sequence[Path], today: date | None = None) -> Evaluation:
    """Merge several files (e.g. the machine's and the evaluator's); errors name file and entry.

    Each file's waivers are judged on that file's `date`, else on `today` (default: the local date).
    """
    known = {i.id for i in catalog}
    files: list[VerdictFile] = []
    for path in paths:
        file = read_verdict_file(path, known)
        try:
            merge_verdicts(known, [file.verdicts])
        except ResultError as exc:
            raise UsageError(f"{path}: {exc}") from None
        files.append(file)
    try:
        merged = merge_verdicts(known, [f.verdicts for f in files])
    except ResultError as exc:
        names = ", ".join(str(p) for p in paths)
        raise UsageError(f"{names}: {exc}") from None
    waived = [w.indicator for f in files for w in f.waivers]
    twice = sorted({i for i in waived if waived.count(i) > 1})
    if twice:
        raise UsageError(f"{', '.join(map(str, paths))}: more than one waiver for {', '.join(twice)}")
    outcomes = tuple(
        o for f in files for o in assess(f.waivers, merged, f.header.date or today or date.today())
    )
    return Evaluation(tuple(files), merged, outcomes, apply(merged, outcomes))


def load_verdicts(catalog: Catalog, paths: Sequence[Path]) -> dict[str, Verdict]:
    """The verdicts to score, waivers applied."""
    return load_evaluation(catalog, paths).scored
