"""`tls: auto`: whether an HTTP device is spoken to over TLS or plain HTTP, decided once per run.

Most cameras on a site LAN serve plain HTTP; an inventory that assumed TLS made every probe of
such a device fail with a handshake error and no hint. With `tls: auto` (the default for ONVIF,
ISAPI and the platform) the run first looks at the device's TLS the way transport_security does
(a handshake that verifies against the site's trust, and only if it fails one accepting any
certificate): a device that completes either is spoken to over TLS (an untrusted certificate then
fails the probes that verify, as it should). Only a device that answers with something other
than TLS, and then answers a plain HTTP request, is spoken to in plain HTTP. A device that answers
nothing stays on TLS, and its probes report it unreachable. Every attempt is evidence; whether
plain HTTP is acceptable is transport_security's judgement, not this choice's, made on the same
look (`earlier_look`, `earlier_knock`: one handshake a healthy device for both, not three).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Iterable
from typing import Any

from collectors.errors import Unreachable
from collectors.tlscheck import PlainAnswer, TlsClient, TlsReport
from probes.base import ProbeContext
from probes.targets import SiteView, Target

HTTP_PROTOCOLS = frozenset({"onvif", "isapi", "http"})


def _look_key(target: Target) -> tuple[str, ...]:
    return ("tls.handshake", target.id)


def _knock_key(target: Target) -> tuple[str, ...]:
    return ("tls.plain_http", target.id)


def earlier_look(ctx: ProbeContext, target: Target) -> TlsReport | None:
    """The device's TLS handshakes (TlsClient.handshake) as the run made them deciding `tls: auto`;
    None when it did not, or got no answer."""
    look: TlsReport | None = ctx.fetched(_look_key(target))
    return look


def earlier_knock(ctx: ProbeContext, target: Target) -> PlainAnswer | None:
    """The plain HTTP request `tls: auto` made to a device that spoke no TLS, if it did."""
    knock: PlainAnswer | None = ctx.fetched(_knock_key(target))
    return knock


async def choose(ctx: ProbeContext, target: Target) -> Target:
    """The target with `tls` set to what it answered, and how that was found in its params."""
    conn = ctx.connection(dataclasses.replace(target, tls=True))
    evidence: list[str] = []
    try:
        async with TlsClient(conn) as client:
            look: TlsReport = await ctx.shared(_look_key(target), client.handshake)
            evidence += look.evidence
            if look.spoken:
                chosen, reason = True, "TLS handshake completed"
            else:
                why = look.handshake_error
                path = target.path or "/"
                plain: PlainAnswer = await ctx.shared(_knock_key(target), lambda: client.plain_http(path))
                evidence.append(plain.exchange_id)
                chosen = not plain.answered
                reason = (
                    f"no TLS ({why}); plain HTTP answered {plain.status}"
                    if plain.answered
                    else f"no TLS ({why}) and no plain HTTP answer either"
                )
    except Unreachable as exc:
        if exc.exchange_id:
            evidence.append(exc.exchange_id)
        chosen, reason = True, f"no answer ({exc}); TLS kept"
    transport = {"chosen": "tls" if chosen else "plain_http", "reason": reason, "evidence": evidence}
    return dataclasses.replace(target, tls=chosen, params={**target.params, "transport": transport})


def undecided(targets: Iterable[Target]) -> list[Target]:
    return [t for t in targets if t.tls_auto and t.protocol in HTTP_PROTOCOLS and "transport" not in t.params]


async def settle_transports(
    ctx: ProbeContext, limit: contextlib.AbstractAsyncContextManager[Any] | None
) -> SiteView:
    """Every `tls: auto` device of the site decided, side by side under the run's limit (if any)."""

    async def one(target: Target) -> Target:
        async with limit if limit is not None else contextlib.nullcontext():
            return await choose(ctx, target)

    decided: dict[str, Target] = {}
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(one(t)) for t in undecided(ctx.site.targets)]
    for task in tasks:
        decided[task.result().id] = task.result()
    return dataclasses.replace(ctx.site, targets=tuple(decided.get(t.id, t) for t in ctx.site.targets))
