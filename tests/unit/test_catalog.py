"""The catalog encodes the paper exactly: sums, IDs, and every relabelling NOTES.md lists."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from mapping.catalog import LEVELS, CatalogError, load_catalog

CATALOG_DIR = Path(__file__).resolve().parents[2] / "mapping" / "catalog"


@pytest.fixture(scope="module")
def catalog():  # type: ignore[no-untyped-def]
    return load_catalog()


FIRST_LEVEL_POINTS = {
    "A": [30, 10, 30, 10, 20],
    "B": [30, 10, 30, 10, 20],
    "C": [25, 10, 30, 15, 20],
}


@pytest.mark.parametrize("level", LEVELS)
def test_first_level_points_and_level_total(catalog, level):  # type: ignore[no-untyped-def]
    groups = catalog.first_levels(level)
    assert [g.id for g in groups] == [f"{level}{n}" for n in range(1, 6)]
    assert [int(g.points) for g in groups] == FIRST_LEVEL_POINTS[level]
    total = sum((i.points or Decimal(0) for i in catalog.level(level)), Decimal(0))
    assert total == Decimal(100)


def test_second_level_subtotals_hold(catalog):  # type: ignore[no-untyped-def]
    subtotals: dict[str, Decimal] = {}
    for ind in catalog:
        if ind.kind == "scored":
            subtotals[ind.second_level.id] = subtotals.get(ind.second_level.id, Decimal(0)) + ind.points
    for ind in catalog:
        if ind.kind == "scored":
            assert subtotals[ind.second_level.id] == ind.second_level.points, ind.second_level.id


def test_ids_unique_and_nested(catalog):  # type: ignore[no-untyped-def]
    ids = [i.id for i in catalog]
    assert len(ids) == len(set(ids))
    for ind in catalog:
        assert ind.id.startswith(ind.second_level.id + ".")
        assert ind.second_level.id.startswith(ind.first_level.id + ".")
        assert ind.id[0] == ind.level


# Every row of NOTES.md "Printed labels that differ from their place in the table".
RELABELLED = {
    "A3.4.2": "A1.4.2",
    "A3.4.3": "A1.4.3",
    "A3.4.4": "A1.4.4",
    "A3.4.5": "A1.4.5",
    "A2.4.4": "A2.4.3",
    "A3.3.3": "A3.3.2",
    "A5.5.2": "5.5.2",
    "B2.2.3": "B2.2.3",  # label right, printed in the B2.3 row
    "B4.1.1": "A4.1.1",
    "B4.1.2": "A4.1.2",
    "B4.1.3": "A4.1.3",
    "B4.3.4": "A4.3.4",
    "B4.3.5": "A4.3.5",
    "B5.3.3": "B3.3.3",
    "B5.4.1": "B5.4.1",
    "B5.4.2": "B5.4.1",
    "B5.4.3": "B5.4.2",
    "B5.4.4": "B5.4.3",
    "B5.6.2": "A5.6.2",
    "C4.1.2": "A4.1.2",
    "C5.3.1": "B5.3.1",
    "C5.3.2": "B5.3.2",
    "C5.3.3": "B5.3.3",
    "A5.2.2": "A5.2.2",
}
LOST = {"A5.3.1": Decimal(1), "B5.1.1": None, "B5.1.3": None, "C3.1.1": None}


@pytest.mark.parametrize(("canonical", "printed"), sorted(RELABELLED.items()))
def test_relabelling_from_notes(catalog, canonical, printed):  # type: ignore[no-untyped-def]
    ind = catalog.get(canonical)
    assert ind.printed_label == printed
    if printed != canonical:
        assert ind.note, f"{canonical} must say why it differs from {printed}"


def test_every_label_difference_is_one_notes_lists(catalog):  # type: ignore[no-untyped-def]
    differing = {i.id for i in catalog if i.printed_label != i.id}
    assert differing == {k for k, v in RELABELLED.items() if k != v} | set(LOST)


@pytest.mark.parametrize(("canonical", "points"), sorted(LOST.items()))
def test_lost_items(catalog, canonical, points):  # type: ignore[no-untyped-def]
    ind = catalog.get(canonical)
    assert ind.text_lost and ind.text_zh == "" and ind.printed_label is None
    assert ind.points == points
    assert ind.note


def test_specific_points_from_notes(catalog):  # type: ignore[no-untyped-def]
    assert [catalog.get(f"A3.4.{k}").points for k in range(1, 6)] == [3, 2, 2, 2, 1]
    assert [catalog.get(f"B5.4.{k}").points for k in range(1, 5)] == [2, 2, 1, 4]
    assert [catalog.get(f"C5.3.{k}").points for k in range(1, 4)] == [3, 2, 6]
    assert catalog.get("A2.4.4").points == Decimal("0.5")
    assert catalog.get("A3.3.3").points == Decimal("0.5")
    assert catalog.get("A5.2.2").points == Decimal("1.5")


def test_smaller_slips_are_noted(catalog):  # type: ignore[no-untyped-def]
    assert "符合" in catalog.get("A4.1.1").note
    assert "GBT35136" in catalog.get("C4.1.1").note
    assert catalog.get("A1.1.1").first_level.note  # 公共区域安全 vs 公共区域安防


def test_verbatim_text_is_in_the_paper(catalog):  # type: ignore[no-untyped-def]
    seed = Path(__file__).resolve().parents[3] / "shared" / "seed" / "000_d0e24a30c6e5d2a5.txt"
    if not seed.exists():
        pytest.skip("the standard's text (../shared/seed) is not beside this checkout")
    paper = "".join(seed.read_text(encoding="utf-8").split())
    for ind in catalog:
        if not ind.text_lost:
            assert _in_paper("".join(ind.text_zh.split()), paper), ind.id


def _in_paper(text: str, paper: str) -> bool:
    """Whole, or in two pieces where the PDF extraction split a table cell across rows."""
    if text in paper:
        return True
    for cut in range(len(text) - 1, 1, -1):
        start = paper.find(text[:cut])
        if start >= 0 and text[cut:] in paper[start + cut : start + cut + 400]:
            return True
    return False


# --- validation names the indicator at fault -------------------------------------------------


def _broken_copy(tmp_path: Path, level: str, edit) -> Path:  # type: ignore[no-untyped-def]
    out = tmp_path / "catalog"
    shutil.copytree(CATALOG_DIR, out)
    doc = yaml.safe_load((out / f"{level}.yaml").read_text(encoding="utf-8"))
    edit(doc)
    (out / f"{level}.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return out


def _item(doc, sl_id, idx=0):  # type: ignore[no-untyped-def]
    for fl in doc["first_levels"]:
        for sl in fl["second_levels"]:
            if sl["id"] == sl_id:
                return sl["indicators"][idx]
    raise AssertionError(sl_id)


def test_wrong_item_points_names_the_group(tmp_path):  # type: ignore[no-untyped-def]
    path = _broken_copy(tmp_path, "B", lambda d: _item(d, "B1.2").__setitem__("points", 4))
    with pytest.raises(CatalogError, match=r"B\.yaml: B1\.2 items sum to 9, but the subtotal is 8"):
        load_catalog(path)


def test_duplicate_id_is_refused(tmp_path):  # type: ignore[no-untyped-def]
    def dup(doc):  # type: ignore[no-untyped-def]
        _item(doc, "C1.3", 1)["id"] = "C1.3.1"
        _item(doc, "C1.3", 1)["printed_label"] = "C1.3.1"

    with pytest.raises(CatalogError, match=r"duplicate indicator id C1\.3\.1"):
        load_catalog(_broken_copy(tmp_path, "C", dup))


def test_relabel_without_note_is_refused(tmp_path):  # type: ignore[no-untyped-def]
    path = _broken_copy(tmp_path, "C", lambda d: _item(d, "C1.2").__setitem__("printed_label", "X"))
    with pytest.raises(CatalogError, match=r"C1\.2\.1: printed as 'X'; a note must say why"):
        load_catalog(path)


def test_basic_item_with_points_is_refused(tmp_path):  # type: ignore[no-untyped-def]
    path = _broken_copy(tmp_path, "A", lambda d: _item(d, "A1.1").__setitem__("points", 1))
    with pytest.raises(CatalogError, match=r"A1\.1\.1: a basic item carries no points"):
        load_catalog(path)
