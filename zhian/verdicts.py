"""Reading verdict files (the `zhian score` format) from disk."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from mapping.catalog import Catalog
from scorer.results import ResultError, Verdict, merge_verdicts
from zhian.errors import UsageError


def read_verdict_document(path: Path) -> Mapping[str, object]:
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
    unknown = set(doc) - {"verdicts", "community", "evaluator", "date"}
    if unknown:
        raise UsageError(f"{path}: unknown top-level keys {sorted(map(str, unknown))}")
    verdicts = doc.get("verdicts") or {}
    return {str(k): v for k, v in verdicts.items()}


def load_verdicts(catalog: Catalog, paths: Sequence[Path]) -> dict[str, Verdict]:
    """Merge several files (e.g. the machine's and the evaluator's); errors name file and entry."""
    documents: list[Mapping[str, object]] = []
    for path in paths:
        doc = read_verdict_document(path)
        try:
            merge_verdicts((i.id for i in catalog), [doc])
        except ResultError as exc:
            raise UsageError(f"{path}: {exc}") from None
        documents.append(doc)
    try:
        return merge_verdicts((i.id for i in catalog), documents)
    except ResultError as exc:
        names = ", ".join(str(p) for p in paths)
        raise UsageError(f"{names}: {exc}") from None
