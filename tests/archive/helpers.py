"""Sealed run directories for the archive tests, written by zhian's own writers (the report fixture)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.unit.fixtures.report.runs import write_run
from zhian.cli import main
from zhian.evidence.keys import PUBLIC_FILE, load_or_create
from zhian.evidence.manifest import seal


def sealed_run(root: Path, name: str, community: str = "测试小区", **extra: Any) -> Path:
    """A run of `community` signed by the key in root/keys; `extra` entries change run.json."""
    run_dir = write_run(root / name, community={"name": community, "operator": "某物业", "address": "",
                                                 "target_level": "B"})  # fmt: skip
    if extra:
        import json

        meta = json.loads((run_dir / "run.json").read_text(encoding="utf-8")) | extra
        (run_dir / "run.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        seal(run_dir, load_or_create(root / "keys"), meta)
    return run_dir


def trusted(root: Path) -> list[str]:
    return ["--trust", str(root / "keys" / PUBLIC_FILE)]


def archive(*args: str) -> int:
    return main(["archive", *args])
