"""`zhian run` on every device of the large community: wall time, CPU, peak memory, verdicts.

Starts `simulator/communities/large.yaml` (or a shrunk copy, `--scale`) with its real reply
latencies in its own process (`zhian sim up`), then runs `zhian run` on every device (sampling
mode monitoring) in another, and reads that process's own CPU time and peak RSS from the kernel
(wait4), so the simulator's work is never counted as zhian's. Then, for the speedup, the same
collectors at concurrency 1 on a fixed 2 % subset of the site (the first 2 % of each kind, with
the NVRs their cameras record on), per device.

Prints one JSON line last and exits 1 when a target of the issue is missed:
    wall_s <= floor_s + 15   (floor_s: the longest observation window, thresholds.observe_s)
    cpu_ms_per_device <= 10, rss_mb <= 400, and no fail or error finding (the site is healthy).
Usage: .venv/bin/python bench/bench_run_large.py [--scale 0.1] [--no-speedup] [--profile FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
COMMUNITY = ROOT / "simulator" / "communities" / "large.yaml"
BIN = Path(sys.executable).parent
SLACK_S = 15.0
CPU_TARGET_MS = 10.0
RSS_TARGET_MB = 400.0
SUBSET = 0.02
SIM_WORKERS = 3  # the simulator's worker processes: one process falls behind the inspector
INVENTORY_LISTS = ("cameras", "nvrs", "doors", "panels", "gateways")


def scaled_community(source: Path, scale: float, out: Path) -> Path:
    """The community with every top-level `repeat` shrunk by `scale` (at least one of each kind);
    cameras spread over the NVRs left, so that each still records on one."""
    doc = yaml.safe_load(source.read_text(encoding="utf-8"))
    if scale == 1.0:
        out.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
        return out
    repeats = [d for d in doc["devices"] if isinstance(d, dict) and "repeat" in d]
    for item in repeats:
        item["repeat"] = max(1, round(item["repeat"] * scale))
    nvrs = next((d["repeat"] for d in repeats if d["template"].get("kind") == "nvr"), 0)
    for item in repeats:
        if nvrs and "nvr" in (item.get("per") or {}):
            item["per"]["nvr"] = math.ceil(item["repeat"] / nvrs)
    out.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return out


def read_env(path: Path) -> dict[str, str]:
    """The secrets `zhian sim up --write-config` wrote as `export NAME=value` lines."""
    env: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            name, value = words[1].split("=", 1)
            env[name] = value
    return env


def start_site(
    community: Path, work: Path, latency_scale: float, base: str | None, workers: int
) -> subprocess.Popen[bytes]:
    config = work / "site.yaml"
    command = [
        str(BIN / "zhian"), "sim", "up", str(community), "--workdir", str(work / "site"),
        "--write-config", str(config), "--latency-scale", str(latency_scale), "--broker", "mosquitto",
    ]  # fmt: skip
    if base:
        command += ["--address-base", base]
    if workers:
        command += ["--workers", str(workers)]
    log = (work / "sim.log").open("wb")
    sim = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    env_file = config.with_name(config.name + ".env")
    deadline = time.monotonic() + 300
    while not env_file.exists():
        if sim.poll() is not None or time.monotonic() > deadline:
            stop(sim)
            tail = (work / "sim.log").read_text(errors="replace")[-2000:]
            raise SystemExit(f"the simulator did not come up:\n{tail}")
        time.sleep(0.5)
    return sim


def stop(sim: subprocess.Popen[bytes]) -> None:
    if sim.poll() is None:
        sim.send_signal(signal.SIGTERM)
        try:
            sim.wait(60)
        except subprocess.TimeoutExpired:
            sim.kill()
            sim.wait()


def monitoring(config: dict[str, Any], **limits: int | None) -> dict[str, Any]:
    doc = dict(config)
    doc["sampling"] = {"mode": "monitoring"}
    given = {k: v for k, v in limits.items() if v is not None}
    if given:
        doc["limits"] = {**(doc.get("limits") or {}), **given}
    return doc


def subset(config: dict[str, Any], share: float) -> dict[str, Any]:
    """The first `share` of each kind of device (at least one), with the NVRs their cameras record
    on, the broker and the platform: a fixed subset, the same on every run."""
    inv = dict(config["inventory"])
    for name in INVENTORY_LISTS:
        items = inv.get(name) or []
        inv[name] = items[: max(1, math.ceil(len(items) * share))] if items else []
    wanted = {c.get("recorded_by") for c in inv["cameras"]} - {None}
    kept = {n["id"] for n in inv["nvrs"]}
    inv["nvrs"] += [n for n in config["inventory"]["nvrs"] if n["id"] in wanted - kept]
    return config | {"inventory": inv}


def device_count(config: dict[str, Any]) -> int:
    inv = config["inventory"]
    children = sum(len(g.get("devices") or []) for g in inv.get("gateways") or [])
    lists = sum(len(inv.get(name) or []) for name in (*INVENTORY_LISTS, "brokers"))
    return lists + children + (1 if inv.get("platform") else 0)


def write_config(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def run_zhian(config: Path, out: Path, env: dict[str, str], profile: Path | None) -> dict[str, Any]:
    """One `zhian run` in its own process: wall time, and its CPU and peak RSS from wait4."""
    command = [str(BIN / "zhian"), "run", "--config", str(config), "--out", str(out)]
    log = out.with_suffix(".log").open("wb")
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    spy = None
    if profile is not None:
        spy = subprocess.Popen(
            [str(BIN / "py-spy"), "record", "--pid", str(proc.pid), "--rate", "50", "--format", "speedscope",
             "--output", str(profile), "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if spy is not None:
        spy.wait(60)
    if proc.returncode != 0:
        tail = out.with_suffix(".log").read_text(errors="replace")[-2000:]
        raise SystemExit(f"zhian run exited {proc.returncode}:\n{tail}")
    return {
        "wall_s": round(wall, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "rss_mb": round(usage.ru_maxrss / 1024, 1),  # KiB on Linux
        # the machine's 1-minute load average before and after: wall time means little without it
        "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
    }


def run_facts(run_dir: Path) -> dict[str, Any]:
    """Jobs planned (the ledger's run_start) and findings counted by status."""
    with sqlite3.connect(run_dir / "ledger.sqlite") as db:
        body = db.execute("SELECT body FROM records WHERE kind = 'run_start'").fetchone()[0]
    statuses: Counter[str] = Counter()
    with (run_dir / "findings.jsonl").open(encoding="utf-8") as findings:
        for line in findings:
            statuses[json.loads(line)["status"]] += 1
    return {"jobs": json.loads(body)["jobs"], "findings_by_status": dict(sorted(statuses.items()))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--community", type=Path, default=COMMUNITY, help="community file (large.yaml)")
    parser.add_argument("--scale", type=float, default=1.0, help="shrink the site (0.1: a tenth)")
    parser.add_argument("--latency-scale", type=float, default=1.0, help="reply latency factor (1 = real)")
    parser.add_argument("--address-base", help="the site's loopback base (127.N)")
    parser.add_argument("--sim-workers", type=int, default=SIM_WORKERS, help="simulator worker processes")
    parser.add_argument("--connections", type=int, help="limits.connections of the run (default: zhian's)")
    parser.add_argument("--no-speedup", action="store_true", help="skip the concurrency-1 run on the subset")
    parser.add_argument("--profile", type=Path, help="py-spy the full run into this speedscope file")
    parser.add_argument("--keep", type=Path, help="keep the run directories and logs here")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that the site is stopped on a kill
    if not 0 < args.scale <= 1:
        parser.error("--scale must be in (0, 1]")
    with tempfile.TemporaryDirectory(prefix="zhian-bench-run-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        community = scaled_community(args.community, args.scale, work / "community.yaml")
        sim = start_site(community, work, args.latency_scale, args.address_base, args.sim_workers)
        try:
            env = os.environ | read_env(work / "site.yaml.env") | {"ZHIAN_KEY_DIR": str(work / "keys")}
            site = yaml.safe_load((work / "site.yaml").read_text(encoding="utf-8"))
            full = write_config(work / "full.yaml", monitoring(site, connections=args.connections))
            measured = run_zhian(full, work / "run-full", env, args.profile)
            facts = run_facts(work / "run-full")
            serial: dict[str, Any] | None = None
            if not args.no_speedup:
                small = subset(monitoring(site, concurrency=1, connections=args.connections), SUBSET)
                one = run_zhian(write_config(work / "subset.yaml", small), work / "run-subset", env, None)
                serial = one | {"devices": device_count(small)} | run_facts(work / "run-subset")
        finally:
            stop(sim)
    devices = device_count(site)
    floor = float((site.get("thresholds") or {}).get("observe_s", 100))
    cpu_ms = round(measured["cpu_s"] * 1000 / devices, 2)
    statuses = facts["findings_by_status"]
    false_failures = statuses.get("fail", 0) + statuses.get("error", 0)
    speedup = None
    if serial is not None:
        speedup = round(serial["wall_s"] / serial["devices"] * devices / measured["wall_s"], 1)
    targets = {
        "wall": measured["wall_s"] <= floor + SLACK_S,
        "cpu": cpu_ms <= CPU_TARGET_MS,
        "rss": measured["rss_mb"] <= RSS_TARGET_MB,
        "no_false_failures": false_failures == 0,
    }
    result = {
        "bench": "run_large",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "scale": args.scale,
        "latency_scale": args.latency_scale,
        "connections": args.connections,
        "sim_workers": args.sim_workers,
        "serial_subset": serial,
        "targets_met": targets,
        **facts,
        "devices": devices,
        "false_failures": false_failures,
        "floor_s": floor,
        **measured,
        "cpu_ms_per_device": cpu_ms,
        "speedup": speedup,
    }
    print(json.dumps(result))
    return 0 if all(targets.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
