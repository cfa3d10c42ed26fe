"""The probe registry lists every probe file, and each probe declares itself completely."""

from __future__ import annotations

import importlib
from pathlib import Path

from pydantic import BaseModel

from probes.registry import PROBES

PROBES_DIR = Path(__file__).resolve().parents[2] / "probes"
NOT_PROBES = {"__init__", "base", "finding", "targets", "registry"}


def probe_modules() -> set[str]:
    return {
        p.stem for p in PROBES_DIR.glob("*.py") if p.stem not in NOT_PROBES and not p.stem.endswith("_common")
    }


def test_registry_matches_files_on_disk() -> None:
    assert set(PROBES) == probe_modules()


def test_each_probe_declares_itself() -> None:
    for probe_id, spec in PROBES.items():
        module = importlib.import_module(f"probes.{probe_id}")
        assert module.SPEC is spec and spec.id == probe_id
        assert spec.mode in ("passive", "active") and spec.applies_to and spec.timeout_s > 0
        assert issubclass(spec.params, BaseModel)
        spec.params()  # every parameter has a default
        assert (spec.mode == "active") == (spec.active_test is not None), probe_id
