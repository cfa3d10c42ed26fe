"""Shared by every test: signing keys go to a temporary folder, never the user's own key folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# Debian installs mosquitto in /usr/sbin, which a non-root PATH lacks: without this the broker tests
# would skip silently on a machine that has it.
if "/usr/sbin" not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin"


# A property test's examples are judged on what they return, not on how fast: Hypothesis' default
# 200 ms deadline per example fails them at random on a loaded 2-core machine (speed lives in bench/).
settings.register_profile("zhian", deadline=None)
settings.load_profile("zhian")


@pytest.fixture(autouse=True)
def _key_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path_factory.getbasetemp() / "zhian-keys"
    monkeypatch.setenv("ZHIAN_KEY_DIR", str(folder))
    return folder


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests marked slow first, the rest in their own order: each xdist worker takes the next test
    as it frees up (`--maxschedchunk=1`), so the long ones are spread over the workers from the start
    and the suite ends on short tests with every worker busy, not on one long test started last."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
