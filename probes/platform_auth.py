"""Platform login required (C5.1.4, basic): no API route but health and login answers without a token.

Every protected route of docs/platform-api.md is asked once without credentials (no Authorization
header at all: a made-up token would count as a failed login against the caller's address). It
must be refused (401 or 403). Then zhian logs in and asks the GET routes with its token, which
proves the login works and that a refused route exists: a route that answers 404 even with the
token is not on this platform and is left out. A route answering 2xx without a token fails the
probe; any other answer (404, 5xx ...) without a token is no clear refusal (partial).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from collectors.errors import CollectorError
from collectors.platform import PlatformClient
from probes.base import ProbeContext, ProbeSpec
from probes.finding import Finding, collector_finding
from probes.platform_common import platform_client, platform_profile
from probes.targets import Target

PROBE = "platform_auth"
REFUSED = (401, 403)
Method = Literal["GET", "POST"]
# docs/platform-api.md, every route but /login and /health (relative to the API base, /api/v1).
ROUTES: tuple[tuple[Method, str], ...] = (
    ("GET", "/alerts"),
    ("POST", "/alerts/zhian-probe/ack"),
    ("GET", "/events"),
    ("GET", "/devices"),
    ("GET", "/linkages"),
    ("GET", "/time"),
    ("GET", "/residents"),
)


class Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    routes: tuple[tuple[Method, str], ...] = ROUTES


def judge(
    device: str,
    without: dict[str, int],
    with_token: dict[str, int],
    evidence: tuple[str, ...],
    started: datetime,
    finished: datetime,
) -> Finding:
    """`without` / `with_token`: "METHOD route" -> HTTP status (with_token only for GET routes)."""
    absent = sorted(r for r, s in with_token.items() if s == 404 and without.get(r) not in REFUSED)
    checked = {r: s for r, s in without.items() if r not in absent}
    open_ = sorted(r for r, s in checked.items() if 200 <= s < 300)
    unclear = sorted(r for r, s in checked.items() if s not in REFUSED and not 200 <= s < 300)
    refused = sorted(r for r, s in checked.items() if s in REFUSED)
    facts: dict[str, Any] = {
        "unauthenticated": without,
        "authenticated": with_token,
        "open": open_,
        "unclear": unclear,
        "absent": absent,
    }

    def finding(
        status: Literal["pass", "fail", "partial", "not_assessed"], reason: str, detail: str
    ) -> Finding:
        ratio = round(len(refused) / len(checked), 4) if status == "partial" else None
        return Finding(PROBE, device, status, reason, detail, facts, evidence, ratio, started, finished)

    if open_:
        return finding("fail", "unauthenticated_access", f"Answered without login: {', '.join(open_)}.")
    if not checked:
        return finding("not_assessed", "no_routes", "None of the API routes exists on this platform.")
    if unclear:
        detail = f"Not clearly refused without login: {', '.join(f'{r} ({checked[r]})' for r in unclear)}."
        return finding("partial", "refusal_unclear", detail)
    return finding(
        "pass", "authentication_enforced", f"All {len(refused)} API routes refused a request without login."
    )


async def run(ctx: ProbeContext, target: Target, params: Params) -> Finding:
    started = ctx.clock()
    evidence: list[str] = []
    without: dict[str, int] = {}
    with_token: dict[str, int] = {}
    profile = platform_profile(target)
    # artemis: every route is a signed POST; "with login" means signed
    routes = params.routes if profile.api == "zhian" else tuple(("POST", r) for r in profile.routes.values())
    try:
        async with platform_client(ctx, target) as platform:
            for method, route in routes:
                answer = await platform.status_of(method, route, authenticated=False)
                without[f"{method} {route}"] = answer.status
                evidence.append(answer.exchange_id)
            try:
                if isinstance(platform, PlatformClient):
                    evidence.append(await platform.login())
                for method, route in routes:
                    if method == "GET" or profile.api == "artemis":
                        answer = await platform.status_of(method, route, authenticated=True)
                        with_token[f"{method} {route}"] = answer.status
                        evidence.append(answer.exchange_id)
            except CollectorError as exc:
                if not any(200 <= s < 300 for s in without.values()):
                    raise
                evidence += [exc.exchange_id] if exc.exchange_id else []  # open routes fail regardless
    except CollectorError as exc:
        return collector_finding(
            PROBE, target.id, exc, started_at=started, finished_at=ctx.clock(), evidence=tuple(evidence)
        )
    return judge(target.id, without, with_token, tuple(evidence), started, ctx.clock())


SPEC = ProbeSpec(
    id=PROBE,
    title="The platform's API refuses every request without login (health and login excepted)",
    mode="passive",
    applies_to=("platform",),
    params=Params,
    timeout_s=60.0,
    run=run,
)
