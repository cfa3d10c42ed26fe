"""What a simulated broker is made of, whichever implementation serves it: accounts and listeners."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from simulator.tls import SiteTls

READY_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0


class BrokerError(RuntimeError):
    """The broker could not be set up or did not come up."""


@dataclass(frozen=True)
class Account:
    """One broker login and the topic filters it may subscribe to (read) and publish to (write)."""

    username: str
    password: str
    read: tuple[str, ...] = ("#",)
    write: tuple[str, ...] = ("#",)

    def __post_init__(self) -> None:
        if not self.username or any(c in self.username for c in ": \t\r\n"):
            raise ValueError(f"broker username {self.username!r} cannot go into a password file")
        if not self.password or any(c in self.password for c in "\r\n"):
            raise ValueError(f"broker account {self.username!r} needs a one-line password")


@dataclass(frozen=True)
class Plan:
    """One broker to start: where it listens, who may log in, and its scratch directory."""

    host: str
    listeners: tuple[tuple[int, bool], ...]  # (port, tls)
    accounts: tuple[Account, ...]
    tls: SiteTls | None
    run_dir: Path
