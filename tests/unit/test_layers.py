"""Imports follow the data: collectors <- probes <- mapping <- scorer <- zhian; simulator stands apart."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ORDER = ["collectors", "probes", "mapping", "scorer", "zhian"]
OURS = {*ORDER, "simulator"}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names & OURS


@pytest.mark.parametrize("package", [*ORDER, "simulator"])
def test_imports_point_one_way(package: str) -> None:
    if package == "simulator":
        allowed = {"simulator"}  # a test double that reuses the client's code agrees with its bugs
    elif package == "zhian":
        allowed = OURS
    else:
        allowed = set(ORDER[: ORDER.index(package) + 1])
    for path in sorted((ROOT / package).rglob("*.py")):
        wrong = imported_packages(path) - allowed
        assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}"
