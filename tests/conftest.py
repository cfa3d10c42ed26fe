"""Shared by every test: signing keys go to a temporary folder, never the user's own key folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Debian installs mosquitto in /usr/sbin, which a non-root PATH lacks: without this the broker tests
# would skip silently on a machine that has it.
if "/usr/sbin" not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin"


@pytest.fixture(autouse=True)
def _key_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path_factory.getbasetemp() / "zhian-keys"
    monkeypatch.setenv("ZHIAN_KEY_DIR", str(folder))
    return folder
