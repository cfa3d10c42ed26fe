"""Which signers zhian accepts for a sealed run: the one place that decides it.

Today: this machine's own public key (ZHIAN_KEY_DIR/ed25519.pub, when it exists) and the public
keys given with `--trust FILE`. A pinned keyring will plug in here, behind the same `refusal`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from zhian.evidence.keys import PUBLIC_FILE, fingerprint, read_public


@dataclass(frozen=True)
class TrustedKeys:
    keys: dict[str, str]  # fingerprint -> where the key came from

    @classmethod
    def of(cls, trust_files: Iterable[Path], key_dir: Path) -> TrustedKeys:
        """The machine's own key (if it has one) and every `--trust` file."""
        keys: dict[str, str] = {}
        own = key_dir / PUBLIC_FILE
        if own.is_file():
            keys[fingerprint(read_public(own))] = f"this machine's key ({own})"
        for path in trust_files:
            keys.setdefault(fingerprint(read_public(path)), str(path))
        return cls(keys)

    def refusal(self, public_key: bytes) -> str | None:
        """Why a run signed by `public_key` is not accepted, or None when it is."""
        signer = fingerprint(public_key)
        if signer in self.keys:
            return None
        if not self.keys:
            return f"signed by {signer}; no key is trusted here (give --trust FILE with its ed25519.pub)"
        return (
            f"signed by {signer}, which is not a trusted key (trusted: {', '.join(sorted(self.keys))};"
            " give --trust FILE with the signer's ed25519.pub)"
        )
