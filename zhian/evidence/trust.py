"""Which signers a verification accepts: a valid signature proves only that *some* key sealed the
run, so the key itself must be one the reader already trusts.

Trusted are this machine's own key (its public half in the key folder), the keys added to its
keyring with `zhian keys trust FILE.pub` (kept as `trusted/<fingerprint>.pub` in the key folder),
or, when the reader names one with `--trust`, that key alone. `decide` is the one place that says
yes or no; `zhian verify`, the evidence pack and the archive all ask it.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from zhian.errors import UsageError
from zhian.evidence.keys import PUBLIC_FILE, default_key_dir, fingerprint, read_public

KEYRING_DIR = "trusted"


@dataclass(frozen=True)
class TrustedKey:
    fingerprint: str
    public_raw: bytes
    source: str  # "this machine's key", "keyring", "--trust"
    path: Path


@dataclass(frozen=True)
class TrustDecision:
    signer: str  # the fingerprint of the key that signed
    trusted: bool
    why: str  # which trusted key it is, or what was expected instead

    def line(self) -> str:
        return f"signed by {self.signer} ({self.why})"


def keyring(key_dir: Path | None = None) -> list[TrustedKey]:
    """This machine's own key, then the keyring's, in a stable order."""
    folder = key_dir or default_key_dir()
    keys: list[TrustedKey] = []
    own = folder / PUBLIC_FILE
    if own.is_file():
        raw = read_public(own)
        keys.append(TrustedKey(fingerprint(raw), raw, "this machine's key", own))
    ring = folder / KEYRING_DIR
    for path in sorted(ring.glob("*.pub")) if ring.is_dir() else ():
        raw = read_public(path)
        keys.append(TrustedKey(fingerprint(raw), raw, "keyring", path))
    return keys


def trust_key(public_file: Path, key_dir: Path | None = None) -> TrustedKey:
    """Add a public key (the base64 line of an ed25519.pub) to the keyring; adding it twice is harmless."""
    raw = read_public(public_file)
    ring = (key_dir or default_key_dir()) / KEYRING_DIR
    path = ring / f"{fingerprint(raw).removeprefix('sha256:')}.pub"
    try:
        ring.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.write_text(base64.b64encode(raw).decode() + "\n", encoding="ascii")
    except OSError as exc:
        raise UsageError(f"{ring}: cannot add the key ({exc.strerror})") from None
    return TrustedKey(fingerprint(raw), raw, "keyring", path)


def decide(signer_raw: bytes, *, pinned: Sequence[bytes] = (), key_dir: Path | None = None) -> TrustDecision:
    """Is this signer trusted? With `pinned` keys (--trust) only those are; else this machine's own
    key and its keyring."""
    signer = fingerprint(signer_raw)
    if pinned:
        if signer_raw in pinned:
            return TrustDecision(signer, True, "the key given with --trust")
        wanted = ", ".join(fingerprint(k) for k in pinned)
        return TrustDecision(signer, False, f"not the key given with --trust: {wanted}")
    for key in keyring(key_dir):
        if key.public_raw == signer_raw:
            return TrustDecision(signer, True, key.source)
    return TrustDecision(signer, False, "an unknown key: neither this machine's nor in its keyring")
