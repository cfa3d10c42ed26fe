"""Which signers a verification accepts: a valid signature proves only that *some* key sealed the
run, so the key itself must be one the reader already trusts.

Trusted are this machine's own key (its public half in the key folder), the keys added to its
keyring with `zhian keys trust FILE.pub` (kept as `trusted/<fingerprint>.pub` in the key folder),
and the keys the reader names with `--trust FILE.pub`. `decide` is the one place that says yes or
no; `zhian verify` and `zhian archive push` (through `TrustedKeys`) both ask it.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
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
    """Is this signer trusted: this machine's own key, one of its keyring, or one given (`pinned`,
    from --trust)?"""
    signer = fingerprint(signer_raw)
    if signer_raw in pinned:
        return TrustDecision(signer, True, "the key given with --trust")
    for key in keyring(key_dir):
        if key.public_raw == signer_raw:
            return TrustDecision(signer, True, key.source)
    given = " nor given with --trust" if pinned else ""
    return TrustDecision(signer, False, f"an unknown key: neither this machine's, in its keyring{given}")


@dataclass(frozen=True)
class TrustedKeys:
    """`decide` for a batch of runs (the archive's push): the --trust keys read once."""

    pinned: tuple[bytes, ...]
    key_dir: Path | None = None

    @classmethod
    def of(cls, trust_files: Iterable[Path], key_dir: Path | None = None) -> TrustedKeys:
        return cls(tuple(read_public(path) for path in trust_files), key_dir)

    def refusal(self, public_key: bytes) -> str | None:
        """Why a run signed by `public_key` is not accepted, or None when it is."""
        decision = decide(public_key, pinned=self.pinned, key_dir=self.key_dir)
        if decision.trusted:
            return None
        return (
            f"signed by {decision.signer}, which is not a trusted key ({decision.why}; add it with"
            " `zhian keys trust FILE.pub` or give --trust FILE with the signer's ed25519.pub)"
        )
