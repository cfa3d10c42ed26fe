"""The Ed25519 key pair that signs run manifests: made on first use, kept outside every run directory.

A signature only means something if the private half cannot travel with what it signs, so the key
lives in the operator's own data folder (ZHIAN_KEY_DIR, else $XDG_DATA_HOME/zhian/keys, else
~/.local/share/zhian/keys), readable by its owner only; its public half goes into every manifest
and report so an evaluator can tell which key sealed a run.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from zhian.errors import UsageError

PRIVATE_FILE = "ed25519.pem"
PUBLIC_FILE = "ed25519.pub"


def default_key_dir() -> Path:
    if env := os.environ.get("ZHIAN_KEY_DIR"):
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "zhian" / "keys"


def public_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(raw: bytes) -> str:
    return "sha256:" + hashlib.sha256(raw).hexdigest()[:32]


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey
    folder: Path

    @property
    def public_raw(self) -> bytes:
        return public_raw(self.private.public_key())

    def describe(self) -> dict[str, str]:
        raw = self.public_raw
        return {
            "algorithm": "Ed25519",
            "public_key": base64.b64encode(raw).decode(),
            "fingerprint": fingerprint(raw),
        }

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def load_existing(folder: Path, *, not_inside: Path | None = None) -> SigningKey | None:
    """The key in `folder`, or None when there is none (re-sealing never makes a new key)."""
    if not_inside is not None and _inside(folder, not_inside):
        raise UsageError(f"{folder}: the signing key must live outside the run directory {not_inside}")
    private_path = folder / PRIVATE_FILE
    if private_path.exists():
        try:
            loaded = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise UsageError(f"{private_path}: not a readable Ed25519 key ({exc})") from None
        if not isinstance(loaded, Ed25519PrivateKey):
            raise UsageError(f"{private_path}: not an Ed25519 key")
        return SigningKey(loaded, folder)
    return None


def load_or_create(folder: Path, *, not_inside: Path | None = None) -> SigningKey:
    """The key in `folder`, created (0600, folder 0700) when there is none yet."""
    if existing := load_existing(folder, not_inside=not_inside):
        return existing
    private_path = folder / PRIVATE_FILE
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        signing = SigningKey(key, folder)
        (folder / PUBLIC_FILE).write_text(signing.describe()["public_key"] + "\n", encoding="ascii")
    except OSError as exc:
        raise UsageError(f"{folder}: cannot create the signing key ({exc.strerror})") from None
    return signing


def read_public(path: Path) -> bytes:
    """A trusted public key given on the command line: the base64 line zhian writes as ed25519.pub."""
    try:
        raw = base64.b64decode(path.read_text(encoding="ascii").strip(), validate=True)
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: not a base64 Ed25519 public key ({exc})") from None
    if len(raw) != 32:
        raise UsageError(f"{path}: an Ed25519 public key has 32 bytes, this has {len(raw)}")
    return raw


def verify_signature(raw_public: bytes, signature: bytes, data: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        Ed25519PublicKey.from_public_bytes(raw_public).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True
