"""Small sealed run directories written by the real writers, shared by the ledger and export tests."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from collectors.exchange import Exchange
from probes.finding import Finding
from zhian.evidence.exchanges import ExchangeRecorder, current_job, finding_fields
from zhian.evidence.keys import load_or_create
from zhian.evidence.ledger import open_ledger
from zhian.evidence.manifest import seal

SECRET = "s3cret-Passw0rd"


def exchange(n: int, raw: bytes | None = None, response: str | None = None) -> Exchange:
    return Exchange(
        device=f"cam-{n:02d}",
        address="127.0.0.1:8000",
        protocol="onvif",
        operation="GetRecordingSummary",
        started_at=datetime(2026, 11, 25, 12, 0, n % 60, tzinfo=UTC),
        duration_s=0.01,
        request=f"<Envelope><Password>{SECRET}</Password></Envelope>",
        response=response or f"<DataFrom>2026-08-01</DataFrom> echo {SECRET}",
        ok=True,
        raw=raw,
        id=f"x{n:04d}",
    )


def make_run(
    run_dir: Path,
    n: int = 5,
    key_dir: Path | None = None,
    *,
    response: str | None = None,
    findings: tuple[Finding, ...] = (),
    files: Mapping[str, str] | None = None,
) -> None:
    """A small sealed run: run_start, `n` exchanges (odd ones with an artefact), the findings (one
    pass on cam-00 by default), verdicts.yaml and any other `files`, sealed with a key outside it."""
    run_dir.mkdir(exist_ok=True)
    ledger = open_ledger(run_dir, secrets=[SECRET], run_id="r1")
    recorder = ExchangeRecorder(ledger, "r1", lambda probe, device: [f"A2.3.4/{probe}/{device}"])
    ledger.append("run_start", {"run_id": "r1"})
    for i in range(n):
        token = current_job.set(("retention", f"cam-{i:02d}"))
        try:
            recorder(exchange(i, raw=b"raw reply %d" % i if i % 2 else None, response=response))
        finally:
            current_job.reset(token)
    for finding in findings or (
        Finding("retention", "cam-00", "pass", "retention_ok", "ok", evidence=("x",)),
    ):
        ledger.append("finding", finding_fields(finding, "r1", ["A2.3.4"]))
    ledger.close()
    (run_dir / "verdicts.yaml").write_text("verdicts: {}\n", encoding="utf-8")
    for name, text in (files or {}).items():
        (run_dir / name).write_text(text, encoding="utf-8")
    seal(run_dir, load_or_create(key_dir or run_dir.parent / "keys"), {"run_id": "r1"})
