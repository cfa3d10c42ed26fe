"""`zhian monitor` on a large MQTT site: how late a silent device is flagged, memory over a soak, and
CPU per 1,000 heartbeats.

Three processes: the simulator (`zhian sim up` on a generated community: --gateways gateways with
--devices MQTT devices between them, heartbeats every --heartbeat-s, on mosquitto), the monitor
(`zhian monitor` on the config the simulator writes) and this script, which drives and measures:

- lag: after the warm-up, --quiet devices go quiet (their gateway stops their heartbeats, their
  status stays "online"). Each is flagged by a `stale_online` finding whose facts hold its last
  heartbeat and threshold; the lag is the finding's time minus (last heartbeat + threshold), the
  moment `zhian_device_up` turns 0 (the metric reads the same state at scrape time). Target: p99
  at most 1 s.
- RSS: the monitor's resident memory every 10 s over the --soak-s soak after the warm-up; target:
  the last sample within 10 % of the first.
- CPU per 1,000 heartbeats: the monitor's user+system CPU over the soak divided by the heartbeats
  the site sent in it (devices x soak / interval), in thousands.

Prints one JSON line; exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
ZHIAN = [sys.executable, "-m", "zhian.cli"]
LIVE = ("heartbeat", "gateway_status")
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: the configs hold every device
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
START_ATTEMPTS = 3  # per simulator process
STOP_TARGET_S = 10.0  # SIGTERM to exit, every segment sealed


def community(shard: int, gateways: int, devices: int, heartbeat_s: float) -> dict[str, Any]:
    """One simulator process's share: its own broker and addresses, ids prefixed with the shard."""
    per = devices // gateways
    return {
        "name": "bench-monitor",
        "address_base": f"127.{41 + shard}",
        "tls": False,
        "areas": [{"id": "homes", "kind": "residence"}, {"id": "control-room", "kind": "monitoring_center"}],
        "devices": [
            {"id": "platform", "kind": "platform", "protocol": "http", "area": "control-room",
             "platform": {"offline_after_s": heartbeat_s * 3, "poll_interval_s": 60}},
            {"repeat": gateways, "template": {
                "id": f"gw-{shard}-{{n:03d}}", "kind": "gateway", "protocol": "mqtt", "area": "control-room",
                "gateway": {"heartbeat_s": heartbeat_s, "keepalive_s": 60, "devices": [
                    {"repeat": per, "template": {"id": f"d-{shard}-{{parent_n:03d}}-{{n:04d}}",
                                                 "type": "smoke_detector", "area": "homes"}},
                ]},
            }},
        ],
    }  # fmt: skip


def merged(docs: list[dict[str, Any]], envs: list[dict[str, str]]) -> tuple[dict[str, Any], dict[str, str]]:
    """One monitor config over every shard: each shard's broker renamed broker-K with its own
    credentials, the first shard's platform only."""
    out, secrets = json.loads(json.dumps(docs[0])), dict(envs[0])
    out["inventory"]["brokers"], out["inventory"]["gateways"] = [], []
    for k, (doc, env) in enumerate(zip(docs, envs, strict=True)):
        name, var = f"broker-{k}", f"ZHIAN_PW_BROKER_{k}"
        out["credentials"][name] = doc["credentials"]["broker"] | {"password": f"env:{var}"}
        secrets[var] = env["ZHIAN_PW_BROKER"]
        for broker in doc["inventory"]["brokers"]:
            out["inventory"]["brokers"].append(broker | {"id": name, "credentials": name})
        for gateway in doc["inventory"]["gateways"]:
            out["inventory"]["gateways"].append(gateway | {"broker": name})
    platform = out["inventory"].get("platform")
    if platform and platform.get("broker"):
        platform["broker"] = "broker-0"
    out["monitor"] = {"default_interval_s": 3600}
    return out, secrets


def behind_s(metrics: str) -> float:
    """The largest zhian_subscription_behind_seconds in a scrape."""
    values = [
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("zhian_subscription_behind_seconds{")
    ]
    return max(values, default=0.0)


def warm_up(healthz: str, limit_s: float, monitor: subprocess.Popen[bytes]) -> dict[str, Any]:
    """Until every device is judged, every change recorded and every scheduled probe's first round
    over (the monitor's /healthz says), or limit_s: the soak then measures the steady state. A
    first round holds what it fetched until it ends (the offline alert's: a window over every
    broker, then the platform's alerts), which read as growth when the soak began before it."""
    t0 = time.monotonic()
    judged_s = None
    while True:
        doc = json.loads(get(healthz))
        devices, probes = doc["devices"], doc["scheduled_probes"]
        judged = devices["judged"] == devices["tracked"] and not devices["changes_unrecorded"]
        if judged and judged_s is None:
            judged_s = round(time.monotonic() - t0, 1)
        rounds = probes["first_round_done"] == probes["total"]
        if (judged and rounds) or time.monotonic() - t0 > limit_s or monitor.poll() is not None:
            return {
                "warmup_s": round(time.monotonic() - t0, 1),
                "warm": judged and rounds,
                "all_judged_after_s": judged_s,
                "devices_unjudged_after_warmup": devices["tracked"] - devices["judged"],
                "probes_in_first_round_after_warmup": probes["total"] - probes["first_round_done"],
            }
        time.sleep(2)


def read_env(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        out[name] = value.strip("'")
    return out


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for(path: Path, timeout_s: float, proc: subprocess.Popen[bytes]) -> None:
    end = time.monotonic() + timeout_s
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > end:
            raise SystemExit(f"{path} did not appear (process exit {proc.poll()})")
        time.sleep(0.5)


def get(url: str, body: dict[str, Any] | None = None) -> bytes:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as reply:
        return bytes(reply.read())


def findings(state: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for ledger in sorted(state.glob("segments/*/ledger.sqlite")):
        db = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
        out += [json.loads(b) for (b,) in db.execute("SELECT body FROM records WHERE kind = 'finding'")]
        db.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=50_000)
    parser.add_argument("--gateways", type=int, default=500)  # 100 devices each, as large.yaml
    parser.add_argument("--heartbeat-s", type=float, default=30.0)
    parser.add_argument("--quiet", type=int, default=100, help="devices made quiet for the lag figure")
    parser.add_argument(
        "--warmup-s",
        type=float,
        default=900.0,
        help="at most; it ends once every device is judged and every scheduled probe has run once",
    )
    parser.add_argument("--soak-s", type=float, default=600.0)
    parser.add_argument(
        "--processes", type=int, default=0, help="simulator processes (default: one per 5,000 devices)"
    )
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/zhian-bench-monitor"))
    args = parser.parse_args()

    work = args.workdir
    subprocess.run(["rm", "-rf", str(work)], check=True)
    work.mkdir(parents=True)
    shards = args.processes or max(1, -(-args.devices // 5_000))
    env = {
        **os.environ,
        "PATH": os.environ.get("PATH", "") + ":/usr/sbin",
        "ZHIAN_KEY_DIR": str(work / "keys"),
    }
    sims: list[subprocess.Popen[bytes]] = []
    config = work / "site.yaml"
    monitor: subprocess.Popen[bytes] | None = None
    try:
        for k in range(shards):
            site_file = work / f"community-{k}.yaml"
            doc = community(k, args.gateways // shards, args.devices // shards, args.heartbeat_s)
            site_file.write_text(yaml.safe_dump(doc))
            out = ["--write-config", str(work / f"site-{k}.yaml"), "--workdir", str(work / f"site-{k}")]
            quick = ["--latency-scale", "0", "--broker", "mosquitto"]
            command = [*ZHIAN, "sim", "up", str(site_file), *out, *quick]
            # one after another, and again when a start fails: on a loaded machine a process's
            # gateways can miss their 30 s for the broker to acknowledge their retained statuses
            for attempt in range(1, START_ATTEMPTS + 1):
                log = (work / f"sim-{k}.log").open("wb")
                sim = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
                sims.append(sim)
                try:
                    wait_for(work / f"site-{k}.yaml.env", 1800, sim)
                    break
                except SystemExit:
                    sim.wait()
                    sims.remove(sim)
                    if attempt == START_ATTEMPTS:
                        raise
                    subprocess.run(["rm", "-rf", str(work / f"site-{k}")], check=True)
        hooks = [
            next(
                line.split()[-1]
                for line in (work / f"sim-{k}.log").read_text().splitlines()
                if line.startswith("operator hook:")
            )
            for k in range(shards)
        ]
        doc, secrets = merged(
            [yaml.load((work / f"site-{k}.yaml").read_text(), Loader=LOADER) for k in range(shards)],
            [read_env(work / f"site-{k}.yaml.env") for k in range(shards)],
        )
        env |= secrets
        # flow style for the device rows: 50,000 of them in block style pass the 4 MB a config may have
        text = yaml.dump(doc, Dumper=DUMPER, allow_unicode=True, default_flow_style=None, width=1000)
        config.write_text(text)
        port = 19300 + os.getpid() % 500
        mon_err = (work / "monitor.log").open("wb")
        monitor = subprocess.Popen(
            [*ZHIAN, "monitor", "--config", str(config), "--state", str(work / "state"),
             "--listen", f"127.0.0.1:{port}"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=mon_err,
        )  # fmt: skip
        started = time.monotonic()
        while True:  # listening once it has planned, resumed and subscribed
            try:
                get(f"http://127.0.0.1:{port}/healthz")
                break
            except OSError:
                if monitor.poll() is not None or time.monotonic() - started > 1800:
                    raise SystemExit(f"the monitor did not come up: see {work / 'monitor.log'}") from None
                time.sleep(1)
        start_s = time.monotonic() - started
        warm = warm_up(f"http://127.0.0.1:{port}/healthz", args.warmup_s, monitor)
        if monitor.poll() is not None:
            raise SystemExit(f"the monitor exited ({monitor.returncode}): see {work / 'monitor.log'}")
        scrape_t0 = time.monotonic()
        metrics = get(f"http://127.0.0.1:{port}/metrics").decode()
        scrape_s = time.monotonic() - scrape_t0
        up = sum(
            1
            for line in metrics.splitlines()
            if line.startswith("zhian_device_up{") and line.endswith(" 1.0")
        )

        rss: list[float] = []
        cpu0, soak0 = cpu_s(monitor.pid), time.monotonic()
        per_shard = args.gateways // shards
        quiet = [(g % shards, g // shards % per_shard + 1, g // args.gateways + 1) for g in range(args.quiet)]
        quiet_hooks = {f"d-{k}-{g:03d}-{n:04d}": hooks[k] for k, g, n in quiet}
        quiet_ids = list(quiet_hooks)
        quiet_at = soak0 + 10
        quieted = False
        behind: list[float] = []  # the subscriptions' reading delay, at each sample
        while time.monotonic() - soak0 < args.soak_s:
            rss.append(rss_mb(monitor.pid))
            behind.append(behind_s(get(f"http://127.0.0.1:{port}/metrics").decode()))
            if not quieted and time.monotonic() >= quiet_at:
                for device, hook in quiet_hooks.items():
                    get(hook, {"device": device, "action": "child_quiet", "params": {}})
                quieted = True
            time.sleep(10)
        soak_s = time.monotonic() - soak0
        cpu = cpu_s(monitor.pid) - cpu0
        load_during = os.getloadavg()
        stop_t0 = time.monotonic()
        monitor.send_signal(signal.SIGTERM)
        monitor.wait(timeout=300)
        stop_s = time.monotonic() - stop_t0
        heartbeats = args.devices * soak_s / args.heartbeat_s
        lags = []
        recorded = findings(work / "state")
        # a healthy device's status changes once (unknown -> pass); any later change is a false one
        false_changes = sum(
            1
            for f in recorded
            if f["probe"] in LIVE and f["device"] not in quiet_ids and f["change"]["from"] != "unknown"
        )
        for f in recorded:
            if f["device"] in quiet_ids and f.get("reason") == "stale_online" and f["facts"].get("last_seen"):
                due = datetime.fromisoformat(f["facts"]["last_seen"]) + timedelta(
                    seconds=f["facts"]["threshold_s"]
                )
                lags.append((datetime.fromisoformat(f["finished_at"]) - due).total_seconds())
        lags.sort()
        p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))] if lags else None
        steady = rss[len(rss) // 5 :] or rss  # after the first fifth of the soak
        growth = (steady[-1] - steady[0]) / steady[0] if steady and steady[0] else None
        figures = {
            "devices": args.devices,
            "gateways": args.gateways,
            "simulator_processes": shards,
            "heartbeat_s": args.heartbeat_s,
            "monitor_start_s": round(start_s, 1),
            **warm,
            "soak_s": round(soak_s, 1),
            "devices_up_after_warmup": up,
            "metrics_scrape_s": round(scrape_s, 3),
            "metrics_bytes": len(metrics),
            "quiet_devices": args.quiet,
            "flagged": len(lags),
            "lag_p50_s": round(statistics.median(lags), 3) if lags else None,
            "lag_p99_s": round(p99, 3) if p99 is not None else None,
            "lag_max_s": round(lags[-1], 3) if lags else None,
            "rss_first_mb": round(steady[0], 1) if steady else None,
            "rss_last_mb": round(steady[-1], 1) if steady else None,
            "rss_max_mb": round(max(rss), 1) if rss else None,
            "rss_growth": round(growth, 4) if growth is not None else None,
            "cpu_s": round(cpu, 2),
            "cpu_ms_per_1000_heartbeats": round(cpu * 1000 / (heartbeats / 1000), 2),
            "monitor_uptime_s": round(time.monotonic() - started, 1),
            "behind_s_median": round(statistics.median(behind), 2) if behind else None,
            "behind_s_max": round(max(behind), 2) if behind else None,
            "false_changes": false_changes,
            "stop_s": round(stop_s, 2),
            "loadavg_1_5_15": [round(x, 1) for x in load_during],
        }
        print(json.dumps(figures))
        ok = (
            warm["warm"]
            and p99 is not None
            and p99 <= 1.0
            and len(lags) == args.quiet
            and growth is not None
            and abs(growth) <= 0.10
            and false_changes == 0
            and stop_s <= STOP_TARGET_S
        )
        return 0 if ok else 1
    finally:
        if monitor is not None and monitor.poll() is None:
            monitor.kill()
        for sim in sims:
            sim.send_signal(signal.SIGINT)
        for sim in sims:
            try:
                sim.wait(timeout=120)
            except subprocess.TimeoutExpired:
                sim.kill()


if __name__ == "__main__":
    raise SystemExit(main())
