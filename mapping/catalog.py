"""Load and check the indicator catalog (appendices A, B, C of the standard).

The YAML under `mapping/catalog/` is the source of truth; this module only reads it, flattens the
three-level tree into indicator records and refuses a catalog whose arithmetic does not hold
(points of items against their subtotals, subtotals against first-level totals, 100 per level),
naming the indicator at fault, so that a typo can never change a grade silently.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

LEVELS: tuple[str, ...] = ("A", "B", "C")
LEVEL_TOTAL = Decimal(100)
# libyaml when installed: the pure-Python parser took most of a monitor's or run's start
SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Kind = Literal["basic", "scored"]


class CatalogError(Exception):
    """The catalog data is inconsistent; the message names the file and the indicator."""


@dataclass(frozen=True)
class Group:
    """A first- or second-level indicator: a heading with a points total (None for 基本要求)."""

    id: str
    name_zh: str
    name_en: str
    points: Decimal | None
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name_zh, "name_en": self.name_en, "points": _num(self.points)}


@dataclass(frozen=True)
class Indicator:
    """A third-level indicator: the unit that is judged and scored."""

    id: str
    level: str
    first_level: Group
    second_level: Group
    kind: Kind
    points: Decimal | None
    printed_label: str | None
    text_zh: str
    text_en: str
    text_lost: bool
    note: str | None

    def as_dict(self) -> dict[str, Any]:
        """Exactly the catalog fields, in the order the CLI documents."""
        return {
            "id": self.id,
            "level": self.level,
            "first_level": self.first_level.as_dict(),
            "second_level": self.second_level.as_dict(),
            "kind": self.kind,
            "points": _num(self.points),
            "printed_label": self.printed_label,
            "text_zh": self.text_zh,
            "text_en": self.text_en,
            "text_lost": self.text_lost,
            "note": self.note,
        }


def _num(value: Decimal | None) -> int | float | None:
    """A Decimal for JSON/YAML: an int when whole, else a float (points have at most 2 decimals)."""
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() else float(value)


@dataclass(frozen=True)
class Catalog:
    indicators: tuple[Indicator, ...]
    _by_id: dict[str, Indicator] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {i.id: i for i in self.indicators})

    def __iter__(self) -> Iterator[Indicator]:
        return iter(self.indicators)

    def __len__(self) -> int:
        return len(self.indicators)

    def __contains__(self, indicator_id: object) -> bool:
        return indicator_id in self._by_id

    def get(self, indicator_id: str) -> Indicator:
        try:
            return self._by_id[indicator_id]
        except KeyError:
            raise KeyError(f"unknown indicator {indicator_id!r}") from None

    def level(self, level: str) -> tuple[Indicator, ...]:
        return tuple(i for i in self.indicators if i.level == level)

    def first_levels(self, level: str) -> list[Group]:
        seen: dict[str, Group] = {}
        for i in self.level(level):
            seen.setdefault(i.first_level.id, i.first_level)
        return list(seen.values())


def _decimal(value: object, where: str) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise CatalogError(f"{where}: points must be a number or null, not {value!r}")
    try:
        return Decimal(str(value))
    except ArithmeticError as exc:
        raise CatalogError(f"{where}: points {value!r} is not a number") from exc


def _group(raw: dict[str, Any], where: str) -> Group:
    try:
        return Group(
            id=str(raw["id"]),
            name_zh=str(raw["name_zh"]),
            name_en=str(raw["name_en"]),
            points=_decimal(raw.get("points"), f"{where} {raw.get('id')}"),
            note=raw.get("note"),
        )
    except KeyError as exc:
        raise CatalogError(f"{where}: group {raw.get('id', '?')} lacks {exc.args[0]!r}") from exc


_INDICATOR_KEYS = {
    "id", "printed_label", "kind", "points", "text_zh", "text_en", "text_lost", "note",
}  # fmt: skip


def _level_indicators(doc: dict[str, Any], source: str) -> list[Indicator]:
    level = doc.get("level")
    if level not in LEVELS:
        raise CatalogError(f"{source}: level must be one of {LEVELS}, not {level!r}")
    out: list[Indicator] = []
    level_sum = Decimal(0)
    for fl_raw in doc.get("first_levels") or []:
        fl = _group(fl_raw, source)
        if fl.points is None:
            raise CatalogError(f"{source}: first-level {fl.id} has no points")
        fl_sum = Decimal(0)
        for sl_raw in fl_raw.get("second_levels") or []:
            sl = _group(sl_raw, source)
            sl_sum = Decimal(0)
            for raw in sl_raw.get("indicators") or []:
                ind = _indicator(raw, str(level), fl, sl, source)
                out.append(ind)
                sl_sum += ind.points or 0
            if sl.points is None:
                if sl_sum:
                    raise CatalogError(f"{source}: {sl.id} is a basic group but its items carry points")
            elif sl_sum != sl.points:
                raise CatalogError(
                    f"{source}: {sl.id} items sum to {sl_sum}, but the subtotal is {sl.points}"
                )
            fl_sum += sl.points or 0
        if fl_sum != fl.points:
            raise CatalogError(f"{source}: {fl.id} second levels sum to {fl_sum}, but it carries {fl.points}")
        level_sum += fl_sum
    if level_sum != LEVEL_TOTAL:
        raise CatalogError(f"{source}: level {level} sums to {level_sum}, not {LEVEL_TOTAL}")
    return out


def _indicator(raw: dict[str, Any], level: str, fl: Group, sl: Group, source: str) -> Indicator:
    ind_id = raw.get("id", "?")
    where = f"{source}: {ind_id}"
    missing = _INDICATOR_KEYS - raw.keys()
    extra = raw.keys() - _INDICATOR_KEYS
    if missing or extra:
        raise CatalogError(f"{where}: missing keys {sorted(missing)}, unknown keys {sorted(extra)}")
    if not str(ind_id).startswith(sl.id + ".") or not sl.id.startswith(fl.id + "."):
        raise CatalogError(f"{where}: id does not sit under {sl.id}")
    kind = raw["kind"]
    points = _decimal(raw["points"], where)
    if kind == "basic" and points is not None:
        raise CatalogError(f"{where}: a basic item carries no points")
    if kind == "scored" and (points is None or points <= 0):
        raise CatalogError(f"{where}: a scored item needs positive points")
    if kind not in ("basic", "scored"):
        raise CatalogError(f"{where}: kind must be basic or scored, not {kind!r}")
    if (kind == "basic") != (sl.points is None):
        raise CatalogError(f"{where}: kind {kind} does not match its group {sl.id}")
    lost = raw["text_lost"]
    if not isinstance(lost, bool) or lost == bool(raw["text_zh"]):
        raise CatalogError(f"{where}: text_lost must be true exactly when text_zh is empty")
    if raw["printed_label"] != ind_id and not raw["note"]:
        raise CatalogError(f"{where}: printed as {raw['printed_label']!r}; a note must say why")
    return Indicator(
        id=str(ind_id),
        level=level,
        first_level=fl,
        second_level=sl,
        kind=kind,
        points=points,
        printed_label=raw["printed_label"],
        text_zh=str(raw["text_zh"]),
        text_en=str(raw["text_en"]),
        text_lost=lost,
        note=raw["note"],
    )


def load_catalog(directory: Path | None = None) -> Catalog:
    """Read A.yaml, B.yaml and C.yaml (the shipped catalog unless another directory is given)."""
    indicators: list[Indicator] = []
    for level in LEVELS:
        if directory is None:
            ref = resources.files("mapping") / "catalog" / f"{level}.yaml"
            source, text = f"mapping/catalog/{level}.yaml", ref.read_text(encoding="utf-8")
        else:
            path = directory / f"{level}.yaml"
            try:
                source, text = str(path), path.read_text(encoding="utf-8")
            except OSError as exc:
                raise CatalogError(f"{path}: {exc.strerror}") from exc
        try:
            doc = yaml.load(text, Loader=SAFE_LOADER)
        except yaml.YAMLError as exc:
            raise CatalogError(f"{source}: {exc}") from exc
        if not isinstance(doc, dict):
            raise CatalogError(f"{source}: not a catalog document")
        found = _level_indicators(doc, source)
        if doc["level"] != level:
            raise CatalogError(f"{source}: declares level {doc['level']}, expected {level}")
        indicators.extend(found)
    seen: set[str] = set()
    for ind in indicators:
        if ind.id in seen:
            raise CatalogError(f"mapping/catalog: duplicate indicator id {ind.id}")
        seen.add(ind.id)
    return Catalog(tuple(indicators))
