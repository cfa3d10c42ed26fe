"""Loopback networks (127.N.0.0/16) for simulated communities, claimed so that no two of them meet.

A community's devices listen on fixed ports (8000, 5020, 1883, 8883) of its own 127.N, so two
communities on one N collide ("Address already in use"), whether they run in one pytest process or in
two at once (several worktrees test on one machine). A claim takes an exclusive lock file per N in a
shared folder: the kernel drops it when the holder exits, even when killed, so no claim outlives its
process. An N whose first address already has a listener on a broker port (a `zhian sim` started by
hand, a run that does not take these locks) is skipped too.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO

from simulator.site import base_in_use

LOCKS = Path(tempfile.gettempdir()) / "zhian-test-nets"
# Clear of 127.0 (localhost services), the shipped communities (127.20, 127.21, 127.30) and the bases
# `zhian sim` takes next to them.
NETS = range(100, 250)
# Each process starts at its own place and goes round, so a net is seldom asked for twice in a row.
_order = itertools.count(os.getpid() * 37)


def _lock(net: int) -> IO[bytes] | None:
    """The open, locked lock file of 127.net, or None when another claim holds it."""
    try:
        LOCKS.mkdir()
    except FileExistsError:
        pass
    else:
        LOCKS.chmod(0o1777)  # shared by every user's test runs, like /tmp itself
    # read-only: a lock file another user created can still be locked (flock needs no write access)
    handle = os.fdopen(os.open(LOCKS / f"127.{net}.lock", os.O_RDONLY | os.O_CREAT, 0o666), "rb")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    if base_in_use(f"127.{net}"):
        handle.close()
        return None
    return handle


@contextmanager
def claim_nets(count: int = 1) -> Iterator[list[int]]:
    """`count` adjacent free nets (N, N+1, ...), held until the block ends."""
    for _ in range(len(NETS)):
        first = NETS[next(_order) % len(NETS)]
        wanted = range(first, first + count)
        if wanted[-1] not in NETS:
            continue
        with ExitStack() as held:
            for net in wanted:
                handle = _lock(net)
                if handle is None:
                    break
                held.callback(handle.close)
            else:
                yield list(wanted)
                return
    raise RuntimeError(f"no {count} adjacent free 127.N networks in {NETS}: too many test runs at once?")


@contextmanager
def claim_net() -> Iterator[int]:
    """One free net, held until the block ends."""
    with claim_nets(1) as [net]:
        yield net
