"""Shared by every test: signing keys go to a temporary folder, never the user's own key folder."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _key_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path_factory.getbasetemp() / "zhian-keys"
    monkeypatch.setenv("ZHIAN_KEY_DIR", str(folder))
    return folder
