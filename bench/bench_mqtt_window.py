"""Benchmark of the MQTT observation window: CPU per message received, on a real mosquitto.

The large site's heartbeat window (5,000 devices on 50 gateways, 93 s) runs in a thread of its own
beside the run and costs it CPU for every message: paho's parsing, TLS reads, the hand-over to
the window's tally. Here a publisher in another process replays that traffic to mosquitto: a
retained status per device (replayed at SUBACK), then heartbeats paced through the window; the
window runs in this process, whose CPU over the window (minus that of an empty window of the same
length) divided by the messages received is the cost per message. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pwd
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from collectors.connection import Connection
from collectors.mqtt.client import MqttClient
from simulator.tls import make_site_tls

PUBLISHER = r"""
import json, sys, time
import paho.mqtt.client as mqtt
port, tls_ca, devices, rate, seconds, start_file = sys.argv[1:7]
devices, rate, seconds = int(devices), float(rate), float(seconds)
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-pub")
if tls_ca != "-":
    c.tls_set(ca_certs=tls_ca)
c.connect("127.0.0.1", int(port))
c.loop_start()
for i in range(devices):
    info = c.publish(f"zhian/bench/gw{i // 100:02d}/dev{i:05d}/status", "online", qos=1, retain=True)
info.wait_for_publish(60)
print("retained", flush=True)
while not __import__("os").path.exists(start_file):
    time.sleep(0.01)
beat = json.dumps({"ts": 0, "battery": 97, "rssi": -61}).encode()
t0, sent = time.monotonic(), 0
while time.monotonic() - t0 < seconds:
    due = int((time.monotonic() - t0) * rate)
    while sent < due:
        i = sent % devices
        c.publish(f"zhian/bench/gw{i // 100:02d}/dev{i:05d}/heartbeat", beat, qos=0)
        sent += 1
    time.sleep(0.002)
c.loop_stop()
c.disconnect()
print(sent, flush=True)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def _window(conn: Connection, seconds: float) -> tuple[int, float]:
    before = _cpu()
    async with MqttClient(conn) as client:
        obs = await client.observe(["zhian/bench/#"], seconds)
    return obs.messages, _cpu() - before


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--devices", type=int, default=5000)
    ap.add_argument("--rate", type=float, default=1000.0, help="heartbeats a second during the window")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--plain", action="store_true", help="plain TCP instead of TLS")
    args = ap.parse_args()
    if shutil.which("mosquitto") is None:
        print("bench_mqtt_window: mosquitto is not installed", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        port = _free_port()
        conf = [
            f"user {pwd.getpwuid(os.getuid()).pw_name}",  # as root it would drop to one that cannot read d
            f"listener {port} 127.0.0.1",
            "allow_anonymous true",
            "set_tcp_nodelay true",  # as the simulator's broker
            "max_queued_messages 100000",
        ]
        ca = "-"
        tls = None
        if not args.plain:
            site = make_site_tls(d, "bench", ["127.0.0.1"])
            conf += [f"cafile {site.ca_file}", f"certfile {site.cert_file}", f"keyfile {site.key_file}"]
            ca, tls = str(site.ca_file), site.client_context()
        (d / "m.conf").write_text("\n".join(conf) + "\n")
        broker = subprocess.Popen(["mosquitto", "-c", str(d / "m.conf")], stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            conn = Connection(device="broker", host="127.0.0.1", port=port, tls=tls, timeout_s=10.0)
            _, idle_cpu = asyncio.run(_window(conn, args.seconds))  # the empty window's own cost
            start = d / "go"
            pub = subprocess.Popen(
                [sys.executable, "-c", PUBLISHER, str(port), ca, str(args.devices), str(args.rate),
                 str(args.seconds + 2), str(start)],
                stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            assert pub.stdout is not None
            pub.stdout.readline()  # the retained statuses are stored
            start.touch()
            messages, cpu = asyncio.run(_window(conn, args.seconds))
            pub.wait(timeout=60)
        finally:
            broker.terminate()
            broker.wait()
    per_message_us = (cpu - idle_cpu) / max(1, messages) * 1e6
    print(
        json.dumps(
            {
                "tls": tls is not None,
                "devices": args.devices,
                "messages": messages,
                "window_s": args.seconds,
                "cpu_s": round(cpu, 3),
                "idle_cpu_s": round(idle_cpu, 3),
                "us_per_message": round(per_message_us, 1),
                "load_avg_1m": round(os.getloadavg()[0], 2),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
