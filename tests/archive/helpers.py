"""Sealed run directories for the archive tests, written by zhian's own writers (the report fixture)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from mapping.catalog import load_catalog
from tests.unit.fixtures.report.runs import write_run
from zhian.cli import main
from zhian.evidence.keys import PUBLIC_FILE, load_or_create
from zhian.evidence.manifest import seal


def sealed_run(root: Path, name: str, community: str = "测试小区", **extra: Any) -> Path:
    """A run of `community` signed by the key in root/keys; `extra` entries change run.json."""
    run_dir = write_run(root / name, community={"name": community, "operator": "某物业", "address": "",
                                                 "target_level": "B"})  # fmt: skip
    if extra:
        meta = json.loads((run_dir / "run.json").read_text(encoding="utf-8")) | extra
        (run_dir / "run.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        seal(run_dir, load_or_create(root / "keys"), meta)
    return run_dir


def trusted(root: Path) -> list[str]:
    return ["--trust", str(root / "keys" / PUBLIC_FILE)]


def archive(*args: str) -> int:
    return main(["archive", *args])


def graded_run(root: Path, name: str, on: str, community: str = "测试小区") -> Path:
    """A run the evaluator graded on `on`: every level-C indicator passed, the file sealed into the run."""
    run_dir = sealed_run(root, name, community)
    verdicts = {i.id: {"status": "pass", "source": "evaluator"} for i in load_catalog().level("C")}
    evaluator = root / f"{name}-evaluator.yaml"
    doc = {
        "evaluator": "某评价中心",
        "evaluators": ["张工", "李工", "王工"],
        "date": on,
        "verdicts": verdicts,
    }
    evaluator.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    args = [
        "report",
        str(run_dir),
        "--into-run",
        "--evaluator",
        str(evaluator),
        "--key-dir",
        str(root / "keys"),
    ]
    assert main([*args, "--format", "json"]) == 0
    return run_dir
