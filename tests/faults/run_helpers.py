"""`zhian run` as its own process against hostile peers or a simulated site, and what it left."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import yaml

PASSWORD = "Hostile-Pass-7"


def write_config(path: Path, inventory: dict[str, Any], **extra: Any) -> Path:
    doc = {
        "version": 1,
        "community": {"name": "故障测试小区", "target_level": "C"},
        "areas": [{"id": "gate", "kind": "perimeter"}, {"id": "mc", "kind": "monitoring_center"}],
        "credentials": {"cameras": {"username": "inspector", "password": "env:ZHIAN_FAULT_PASSWORD"}},
        "inventory": inventory,
        "limits": {"call_timeout_s": 2, "probe_timeout_s": 20},
        **extra,
    }
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


async def start_zhian(
    config: Path, out: Path, *extra: str, env: dict[str, str] | None = None
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "zhian.cli", "run", "--config", str(config), "--out", str(out), *extra,
        env={**os.environ, "ZHIAN_FAULT_PASSWORD": PASSWORD, **(env or {})},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def zhian_run(
    config: Path, out: Path, *extra: str, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    proc = await start_zhian(config, out, *extra, env=env)
    stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=300)
    assert proc.returncode is not None
    return proc.returncode, stdout.decode(), stderr.decode()


def findings(out: Path) -> list[dict[str, Any]]:
    text = (out / "findings.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def error_lines(stderr: str) -> list[str]:
    """The lines zhian itself wrote on stderr (not the start line); never a traceback."""
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("zhian:") and "probe jobs" not in line]
