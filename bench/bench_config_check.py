"""`zhian config check` on a large inventory: a generated site of N cameras (with NVRs, doors and
MQTT devices in proportion), checked in this process (the check alone, imports aside) and as the
user types it (`zhian config check --no-secrets site.yaml`, a new process each time: Python's
start, the imports, the check), timed and its peak memory read.

Run: .venv/bin/python bench/bench_config_check.py [--cameras 1000] [--budget-s 2] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def site_yaml(cameras: int) -> str:
    """A valid config with `cameras` cameras, one NVR per 64, a door per 4 and a gateway per 100."""
    nvrs = max(1, cameras // 64)
    lines = [
        "version: 1",
        "community: {name: bench, target_level: A}",
        "areas:",
        "  - {id: gate, kind: perimeter}",
        "  - {id: control, kind: monitoring_center}",
        "  - {id: homes, kind: residence}",
        "credentials:",
        "  cams: {username: inspector, password: env:ZHIAN_BENCH_PASSWORD}",
        "inventory:",
        "  nvrs:",
    ]
    for n in range(nvrs):
        lines.append(
            f"    - {{id: nvr-{n}, host: 10.1.{n // 250}.{n % 250 + 1}, port: 80, area: control,"
            " credentials: cams}"
        )
    lines.append("  cameras:")
    for n in range(cameras):
        lines.append(
            f"    - {{id: cam-{n}, host: 10.2.{n // 250}.{n % 250 + 1}, port: 80, area: gate,"
            f" credentials: cams, recorded_by: nvr-{n % nvrs}, channel: {n // nvrs + 1},"
            " tags: {key_location: false}}"
        )
    lines.append("  doors:")
    for n in range(cameras // 4):
        lines.append(
            f"    - {{id: door-{n}, host: 10.3.{n // 250}.{n % 250 + 1}, port: 80, area: gate,"
            " credentials: cams, fire_zone: gate}"
        )
    lines += [
        "  brokers:",
        "    - {id: broker, host: 10.4.0.1, port: 8883, area: control, credentials: cams}",
    ]
    lines.append("  gateways:")
    for g in range(max(1, cameras // 100)):
        lines += [
            f"    - id: gw-{g}",
            "      broker: broker",
            "      area: control",
            "      topic_root: site",
            "      site: bench",
            "      devices:",
        ]
        lines += [f"        - {{id: smoke-{g}-{c}, type: smoke_detector, area: homes}}" for c in range(50)]
    return "\n".join(lines) + "\n"


def command_runs(path: Path, runs: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds (user + system) of `zhian config check` as a new process, `runs` times."""
    zhian = Path(sys.executable).with_name("zhian")
    argv = [str(zhian)] if zhian.exists() else [sys.executable, "-m", "zhian.cli"]
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run([*argv, "config", "check", "--no-secrets", str(path)], check=True, capture_output=True)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return walls, cpus


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=1000)
    parser.add_argument("--budget-s", type=float, default=2.0, help="the target for the command (median)")
    parser.add_argument("--runs", type=int, default=5, help="times the command is run")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from zhian.configcheck import check_config

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "site.yaml"
        path.write_text(site_yaml(args.cameras), encoding="utf-8")
        check_config(path, secrets=False)  # imports and first-use costs out of the figure
        started = time.perf_counter()
        checked = check_config(path, secrets=False)
        check_s = time.perf_counter() - started
        size = path.stat().st_size
        walls, cpus = command_runs(path, args.runs)
    inv = checked.config.inventory
    figures = {
        "cameras": len(inv.cameras),
        "devices": len(inv.cameras)
        + len(inv.nvrs)
        + len(inv.doors)
        + sum(len(g.devices) for g in inv.gateways),
        "config_bytes": size,
        "check_s": round(check_s, 3),
        "rss_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "command_wall_s": [round(w, 2) for w in walls],
        "command_wall_median_s": round(statistics.median(walls), 2),
        "command_cpu_median_s": round(statistics.median(cpus), 2),
        "load_average_1m": round(os.getloadavg()[0], 1),
        "budget_s": args.budget_s,
    }
    print(json.dumps(figures))
    return 0 if statistics.median(walls) <= args.budget_s else 1


if __name__ == "__main__":
    raise SystemExit(main())
