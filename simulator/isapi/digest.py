"""HTTP Digest authentication (RFC 7616 / 2617, MD5, qop=auth) the way Hikvision ISAPI devices answer.

Shapes follow a 401 captured from a Hikvision device (firmware V5.x, "Server: Webs"):

    WWW-Authenticate: Digest realm="...", domain="::", qop="auth",
        nonce="158ca9b5cb4b32a578432756aef2a189:1669838955551", opaque="", algorithm="MD5", stale="FALSE"

    <?xml version="1.0" encoding="UTF-8" ?>
    <userCheck>
    <statusValue>401</statusValue>
    <statusString>Unauthorized</statusString>
    <lockStatus>lock</lockStatus>
    <unlockTime>210</unlockTime>
    <retryLoginTime>0</retryLoginTime>
    </userCheck>

So a locked peer gets 401 with this `userCheck` body (lockStatus lock, seconds left, 0 retries), not a
`ResponseStatus`; unlocked failures carry lockStatus unlock and the remaining tries. The odd
`domain="::"` is kept on purpose: it is what devices send, and clients must cope with it (aiohttp's
DigestAuthMiddleware then re-challenges on every request instead of authenticating preemptively).
The same device also offered `Basic` when its web authentication was set to "digest/basic"; the
default on current firmware is digest only, which is what is served here.

Uncertain: the nonce lifetime of real firmware is not documented (300 s here); whether devices
whose illegal-login lock is disabled still send lockStatus in the body is unknown (they do not here).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import time
from dataclasses import dataclass, field

from aiohttp import web

from simulator.auth import AuthGuard

_PAIR = re.compile(r'(\w+)=(?:"((?:[^"\\]|\\.)*)"|([^,\s]+))')


def parse_digest(header: str) -> dict[str, str] | None:
    """The fields of a `Digest` Authorization header, or None when it is not one."""
    scheme, _, rest = header.partition(" ")
    if scheme.lower() != "digest":
        return None
    out: dict[str, str] = {}
    for m in _PAIR.finditer(rest):
        out[m.group(1).lower()] = m.group(2).replace('\\"', '"') if m.group(2) is not None else m.group(3)
    return out


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def unlock_in(guard: AuthGuard, peer: str) -> int:
    """Whole seconds until a locked peer may try again (ISAPI reports whole seconds)."""
    return round(guard.unlock_in(peer))


@dataclass
class DigestAuth:
    """Checks Authorization headers against the guard's accounts and writes the device's 401s."""

    realm: str
    guard: AuthGuard
    nonce_ttl_s: float = 300.0
    _secret: bytes = field(default_factory=lambda: os.urandom(16))
    _last_nc: dict[str, int] = field(default_factory=dict)

    def _nonce(self) -> str:
        ms = str(int(time.time() * 1000))
        return hmac.new(self._secret, ms.encode(), hashlib.md5).hexdigest() + ":" + ms

    def _nonce_state(self, nonce: str) -> str:
        """'ok', 'stale' (ours but expired) or 'bad' (not issued here)."""
        mac, _, ms = nonce.partition(":")
        expected = hmac.new(self._secret, ms.encode(), hashlib.md5).hexdigest()
        if not ms.isdigit() or not hmac.compare_digest(mac, expected):
            return "bad"
        return "stale" if time.time() - int(ms) / 1000 > self.nonce_ttl_s else "ok"

    def challenge(self, peer: str, *, stale: bool = False) -> web.Response:
        header = (
            f'Digest realm="{self.realm}", domain="::", qop="auth", nonce="{self._nonce()}", '
            f'opaque="", algorithm="MD5", stale="{"TRUE" if stale else "FALSE"}"'
        )
        lines = ["<statusValue>401</statusValue>", "<statusString>Unauthorized</statusString>"]
        if self.guard.lockout:
            locked = self.guard.locked(peer)
            lines += [
                f"<lockStatus>{'lock' if locked else 'unlock'}</lockStatus>",
                f"<unlockTime>{unlock_in(self.guard, peer) if locked else 0}</unlockTime>",
                f"<retryLoginTime>{0 if locked else self.guard.remaining(peer)}</retryLoginTime>",
            ]
        body = "\n".join(['<?xml version="1.0" encoding="UTF-8" ?>', "<userCheck>", *lines, "</userCheck>\n"])
        return web.Response(
            status=401,
            text=body,
            headers={"WWW-Authenticate": header, "Content-Type": 'application/xml; charset="UTF-8"'},
        )

    def check(self, request: web.Request) -> str | web.Response:
        """The authenticated user name, or the 401 to send back."""
        peer = request.remote or "?"
        if self.guard.locked(peer):
            return self.challenge(peer)
        fields = parse_digest(request.headers.get("Authorization", ""))
        if fields is None:
            return self.challenge(peer)
        user = fields.get("username", "")
        nonce = fields.get("nonce", "")
        password = self.guard.password(user)
        nc, cnonce, qop = fields.get("nc", ""), fields.get("cnonce", ""), fields.get("qop", "")
        ok = (
            password is not None
            and fields.get("realm") == self.realm
            and fields.get("uri") == request.raw_path
            and qop == "auth"
            and hmac.compare_digest(
                fields.get("response", ""),
                _md5(
                    f"{_md5(f'{user}:{self.realm}:{password}')}:{nonce}:{nc}:{cnonce}:{qop}:"
                    f"{_md5(f'{request.method}:{request.raw_path}')}"
                ),
            )
        )
        if not ok:
            self.guard.record(peer, False)
            return self.challenge(peer)
        state = self._nonce_state(nonce)
        count = int(nc, 16) if re.fullmatch(r"[0-9a-fA-F]{1,8}", nc) else 0
        if state != "ok" or count <= self._last_nc.get(nonce, 0):
            # Right password, but an expired, foreign or replayed nonce: ask again, no failure counted.
            return self.challenge(peer, stale=state == "stale")
        if len(self._last_nc) > 256:
            self._last_nc = {n: c for n, c in self._last_nc.items() if self._nonce_state(n) == "ok"}
        self._last_nc[nonce] = count
        self.guard.record(peer, True)
        return user
