"""Login checking with the lockout real devices apply after repeated failures."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field


@dataclass
class AuthGuard:
    """Accounts of one device and its failed-login lockout (5 failures in 10 min -> 60 s lock).

    `check` is given a verifier so that each protocol keeps its own proof (digest, token...).
    """

    accounts: dict[str, str]
    lockout: bool = True
    max_failures: int = 5
    window_s: float = 600.0
    lock_s: float = 60.0
    _failures: dict[str, deque[float]] = field(default_factory=dict)
    _locked_until: dict[str, float] = field(default_factory=dict)
    failures_total: int = 0

    def locked(self, peer: str) -> bool:
        return self.lockout and self._locked_until.get(peer, 0.0) > time.monotonic()

    def record(self, peer: str, ok: bool) -> None:
        if ok:
            self._failures.pop(peer, None)
            return
        self.failures_total += 1
        if not self.lockout:
            return
        now = time.monotonic()
        q = self._failures.setdefault(peer, deque())
        q.append(now)
        while q and now - q[0] > self.window_s:
            q.popleft()
        if len(q) >= self.max_failures:
            self._locked_until[peer] = now + self.lock_s
            q.clear()

    def remaining(self, peer: str) -> int:
        """Failed tries left before the lock."""
        return max(0, self.max_failures - len(self._failures.get(peer, ())))

    def unlock_in(self, peer: str) -> float:
        """Seconds until a locked peer may try again (0 when not locked)."""
        return max(0.0, self._locked_until.get(peer, 0.0) - time.monotonic())

    def password(self, username: str) -> str | None:
        return self.accounts.get(username)
