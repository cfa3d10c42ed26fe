"""Transport encryption (A2.1.1, B2.1.2 basic; B2.4.2 support): a device's HTTP service speaks TLS
with a certificate the site's CA vouches for, a current protocol, and no plain HTTP beside it.

Judged on what the port does, not on what the inventory says: a device listed without TLS is
checked all the same (an unencrypted service is the finding, whatever the inventory expects), and
the inventory's claim is reported beside the result. The certificate is checked against the site's
trust (the run's CA), for its dates and for the device's address among its names.

A port that answers a plain request with 400 or 497 while it speaks TLS is a TLS server telling
the client off (nginx does this), not a plain service.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from collectors.connection import system_trust
from collectors.errors import CollectorError
from collectors.tlscheck import PlainAnswer, TlsClient, TlsReport, name_matches
from probes.base import ProbeContext, ProbeSpec
from probes.finding import Finding, collector_finding
from probes.targets import Target
from probes.transport_common import earlier_knock, earlier_look

PROBE = "transport_security"
HTTP_PROTOCOLS = ("onvif", "isapi", "http", "artemis")
VERSIONS = ("SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
TLS_REFUSALS = (400, 497)  # what TLS servers answer to plain HTTP on their port


class Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    min_version: Literal["TLSv1.2", "TLSv1.3"] = "TLSv1.2"


def version_ok(version: str | None, minimum: str) -> bool:
    return version in VERSIONS and VERSIONS.index(version) >= VERSIONS.index(minimum)


def judge(
    target: Target,
    report: TlsReport,
    plain: PlainAnswer,
    params: Params,
    now: datetime,
    started: datetime,
) -> Finding:
    """Fail, by precedence, plaintext > tls_too_old > certificate_invalid; pass when none applies."""
    facts: dict[str, Any] = {
        "inventory_tls": "auto" if target.tls_auto else target.tls,
        "tls": report.spoken,
        "version": report.version,
        "cipher": report.cipher,
        "plain_http_status": plain.status,
    }
    evidence = (*report.evidence, plain.exchange_id)
    plaintext = plain.answered and not (report.spoken and plain.status in TLS_REFUSALS)

    def finding(status: Literal["pass", "fail", "error"], reason: str, detail: str) -> Finding:
        return Finding(PROBE, target.id, status, reason, detail, facts, evidence, None, started, now)

    if not report.spoken:
        facts["handshake_error"] = report.handshake_error
        if plaintext:
            return finding("fail", "plaintext", f"{target.address} serves plain HTTP and no TLS.")
        return finding(
            "error", "tls_not_spoken", f"{target.address} answers neither a TLS handshake nor plain HTTP."
        )
    cert = report.certificate
    problems: list[str] = []
    if cert is None:
        problems.append("no certificate")
    else:
        facts |= {
            "subject": cert.subject,
            "issuer": cert.issuer,
            "not_after": cert.not_after.isoformat(),
            "days_left": round((cert.not_after - now).total_seconds() / 86400, 1),
            "name_matches": name_matches(target.host, cert.sans),
        }
        if now > cert.not_after:
            problems.append("expired")
        if now < cert.not_before:
            problems.append("not yet valid")
        if not facts["name_matches"]:
            problems.append(f"{target.host} not among its names")
    if not report.verified:
        facts["verify_error"] = report.verify_error
        problems.append(f"does not verify against the site's trust ({report.verify_error})")
    facts["certificate_problems"] = problems
    if plaintext:
        return finding(
            "fail", "plaintext", f"{target.address} speaks TLS but also answers plain HTTP on the same port."
        )
    if not version_ok(report.version, params.min_version):
        return finding(
            "fail",
            "tls_too_old",
            f"{target.address} negotiates {report.version}; {params.min_version} or later is required.",
        )
    if problems:
        return finding(
            "fail", "certificate_invalid", f"{target.address}'s certificate: {'; '.join(problems)}."
        )
    return finding(
        "pass",
        "tls_ok",
        f"{target.address} speaks {report.version} with a valid certificate from the site's CA.",
    )


async def run(ctx: ProbeContext, target: Target, params: Params) -> Finding:
    started = ctx.clock()
    if target.protocol not in HTTP_PROTOCOLS:
        detail = f"{target.protocol} transport is not checked by this probe."
        return Finding(
            PROBE,
            target.id,
            "not_assessed",
            "protocol_not_covered",
            detail,
            started_at=started,
            finished_at=ctx.clock(),
        )
    # TLS is tried whatever the inventory says: the site's trust, never an unverified context.
    conn = dataclasses.replace(ctx.connection(target), tls=ctx.trust or system_trust())
    try:
        async with TlsClient(conn) as client:
            # a `tls: auto` device was looked at when the run decided its transport: that look is
            # this judgement's evidence; one that failed there (no answer in time) gets its own
            report = earlier_look(ctx, target) or await client.handshake()
            plain = earlier_knock(ctx, target) or await client.plain_http(target.path or "/")
    except CollectorError as exc:
        return collector_finding(PROBE, target.id, exc, started_at=started, finished_at=ctx.clock())
    return judge(target, report, plain, params, ctx.clock(), started)


SPEC = ProbeSpec(
    id=PROBE,
    title="HTTP services speak TLS 1.2+ with a certificate from the site's CA, and no plain HTTP",
    mode="passive",
    applies_to=("camera", "nvr", "door", "platform"),
    params=Params,
    timeout_s=30.0,
    run=run,
)
