"""Crash safety: `zhian run` killed with SIGKILL at random moments, N times; every chain checked.

Starts the small community (`zhian sim up small`, its config with short windows), then N times:
starts `zhian run` (passive, every device) in a fresh directory, waits for its ledger to exist,
kills it with SIGKILL after a further random delay drawn uniformly from [0, --max-kill-s] (a delay
past the run's end lets it finish and seal), and checks what it left:

- a run killed before its seal must verify as "unsealed": every record holds (`zhian verify` exit
  4), and `zhian seal --recover` must seal it (exit 0) into a run that verifies (exit 0) with the
  same records plus the one `run_end` record recovery adds;
- a run that sealed before the kill must verify (exit 0);
- a run that never wrote a ledger leaves nothing to check (counted apart).

Prints one JSON line (the figures of bench/README.md) and exits 1 when any chain does not hold, any
count differs or any recovery fails.
Usage: .venv/bin/python bench/bench_crash.py [--runs 50] [--max-kill-s 25] [--seed 1]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import random
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from zhian.cli import main as cli_main
from zhian.evidence.verify import verify

ZHIAN = [sys.executable, "-m", "zhian.cli"]
SHORT = {"heartbeat_misses": 3, "observe_s": 8, "offline_alert_window_s": 5, "recording_fresh_s": 600}


def start_site(folder: Path) -> tuple[subprocess.Popen[bytes], Path, dict[str, str]]:
    config = folder / "site.yaml"
    log = (folder / "sim.log").open("wb")
    sim = subprocess.Popen(
        [*ZHIAN, "sim", "up", "small", "--workdir", str(folder / "site"), "--write-config", str(config),
         "--latency-scale", "0", "--sampling", "monitoring"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    env_file = Path(f"{config}.env")
    for _ in range(240):
        if env_file.is_file():
            break
        if sim.poll() is not None:
            raise SystemExit(f"the simulator stopped: see {folder / 'sim.log'}")
        time.sleep(0.5)
    else:
        raise SystemExit("the simulator did not come up in 2 minutes")
    doc = yaml.safe_load(config.read_text(encoding="utf-8"))
    doc["thresholds"] = {**doc.get("thresholds", {}), **SHORT}
    config.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    env = {}
    for line in env_file.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            name, value = line.removeprefix("export ").split("=", 1)
            env[name.strip()] = shlex.split(value)[0]
    return sim, config, env


def zhian(*args: str, env: dict[str, str]) -> int:
    """verify and seal --recover in this process (the killed run is the separate one)."""
    os.environ.update(env)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return cli_main(list(args))


def one(n: int, config: Path, folder: Path, env: dict[str, str], delay: float) -> dict[str, Any]:
    out = folder / f"run-{n:03d}"
    proc = subprocess.Popen(
        [*ZHIAN, "run", "--config", str(config), "--out", str(out)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    ledger = out / "ledger.sqlite"
    for _ in range(1200):  # the kill falls after the ledger exists: before it there is nothing to lose
        if ledger.is_file() or proc.poll() is not None:
            break
        time.sleep(0.05)
    time.sleep(delay)
    finished = proc.poll() is not None
    if not finished:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    row: dict[str, Any] = {"run": n, "kill_after_s": round(delay, 2), "finished_first": finished}
    if not (out / "ledger.sqlite").is_file():
        row["state"] = "no_ledger"
        return row
    before = verify(out)
    row |= {"records": before.records, "sealed": before.sealed}
    if before.sealed:
        row["state"] = "sealed"
        row["ok"] = before.ok and zhian("verify", str(out), env=env) == 0
        return row
    row["state"] = "unsealed"
    verify_code = zhian("verify", str(out), env=env)
    recover_code = zhian("seal", "--recover", str(out), env=env)
    after = verify(out)
    row |= {"verify_exit": verify_code, "recover_exit": recover_code, "records_after": after.records}
    row["ok"] = (
        before.unsealed
        and verify_code == 4
        and recover_code == 0
        and after.ok
        and after.records == before.records + 1
        and zhian("verify", str(out), env=env) == 0
    )
    return row


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument(
        "--max-kill-s",
        type=float,
        default=20.0,
        help="kills fall uniformly in [0, this] after the ledger exists",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="keep the runs here (default: a temporary folder)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="zhian-crash-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "ZHIAN_KEY_DIR": str(folder / "keys")}
        sim, config, secrets = start_site(folder)
        env |= secrets
        started = time.monotonic()
        rows = []
        try:
            for n in range(args.runs):
                rows.append(one(n, config, folder, env, rng.uniform(0, args.max_kill_s)))
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        finally:
            sim.send_signal(signal.SIGINT)
            sim.wait(timeout=60)
    states = [r["state"] for r in rows]
    checked = [r for r in rows if r["state"] != "no_ledger"]
    failed = [r for r in checked if not r["ok"]]
    result = {
        "bench": "crash",
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "runs": len(rows),
        "killed_before_ledger": states.count("no_ledger"),
        "killed_unsealed": states.count("unsealed"),
        "sealed_before_kill": states.count("sealed"),
        "chains_valid": sum(1 for r in checked if r.get("ok")),
        "recovered": sum(1 for r in checked if r.get("recover_exit") == 0),
        "failed": [r["run"] for r in failed],
        "records_median": statistics.median(r["records"] for r in checked) if checked else 0,
        "records_max": max((r["records"] for r in checked), default=0),
        "wall_s": round(time.monotonic() - started, 1),
    }
    print(json.dumps(result))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
