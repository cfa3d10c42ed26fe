"""Benchmark of the evidence ledger: append rate while a run collects, and `verify` time after.

A large site's inspection visit makes tens of thousands of exchanges; each is committed before the
next probe step, so the append rate bounds how much the ledger can slow a run. Prints one JSON line;
exits non-zero when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from collectors.exchange import Exchange
from zhian.evidence.commits import EACH, GROUPED
from zhian.evidence.exchanges import ExchangeRecorder, current_job
from zhian.evidence.keys import load_or_create
from zhian.evidence.ledger import open_ledger
from zhian.evidence.manifest import seal
from zhian.evidence.verify import verify

SECRETS = [f"secret-{n:04d}" for n in range(1300)]  # a secret per device, as on the large site


def exchange(i: int, reply: str) -> Exchange:
    return Exchange(
        device=f"cam-{i % 1000:04d}",
        address=f"127.30.{i % 250}.{i % 200}:8000",
        protocol="onvif",
        operation="FindRecordings",
        started_at=datetime.now(UTC),
        duration_s=0.012,
        request="<s:Envelope><s:Body><tse:FindRecordings/></s:Body></s:Envelope>",
        response=reply,
        ok=True,
        raw=reply.encode() * 4 if i % 50 == 0 else None,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--reply-bytes", type=int, default=2_000, help="size of each reply excerpt")
    parser.add_argument("--min-rate", type=float, default=1_000, help="target: appends per second")
    parser.add_argument("--max-verify-s", type=float, default=30.0, help="target: verify time")
    parser.add_argument("--each", action="store_true", help="commit each record (the monitor's mode)")
    args = parser.parse_args()
    reply = "<tt:Recording>" + "x" * args.reply_bytes + "</tt:Recording>"
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        run.mkdir()
        ledger = open_ledger(run, secrets=SECRETS, run_id="bench", commits=EACH if args.each else GROUPED)
        recorder = ExchangeRecorder(ledger, "bench", lambda probe, device: ["A2.3.4"])
        current_job.set(("retention", "cam-0001"))
        exchanges = [exchange(i, reply) for i in range(args.records)]
        started, cpu = time.perf_counter(), time.process_time()
        for one in exchanges:
            recorder(one)
        ledger.close()
        append_s, append_cpu = time.perf_counter() - started, time.process_time() - cpu
        seal(run, load_or_create(Path(tmp) / "keys"), {"run_id": "bench"})
        started = time.perf_counter()
        result = verify(run)
        verify_s = time.perf_counter() - started
        size_mb = (run / "ledger.sqlite").stat().st_size / 1e6
    rate = args.records / append_s
    figures = {
        "records": args.records,
        "append_s": round(append_s, 2),
        "appends_per_s": round(rate),
        "cpu_us_per_record": round(append_cpu / args.records * 1e6, 1),
        "verify_s": round(verify_s, 2),
        "verified": result.ok,
        "ledger_mb": round(size_mb, 1),
    }
    print(json.dumps(figures))
    return 0 if result.ok and rate >= args.min_rate and verify_s <= args.max_verify_s else 1


if __name__ == "__main__":
    sys.exit(main())
