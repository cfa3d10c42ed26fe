"""A throwaway PostgreSQL cluster for tests: Debian's server binaries, initdb into a temporary folder,
started on a free loopback port, trust authentication on loopback only, removed at the end.

PostgreSQL refuses to run as root, so as root (CI) the cluster belongs to the unprivileged user
`nobody`; as anyone else it belongs to that user. Skips (with the reason) only where no server is
installed (the archive tests' fixture turns `NoPostgres` into a skip with the reason).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "zhian"


def server_bin() -> Path | None:
    """The folder of initdb and pg_ctl: on PATH, else Debian's /usr/lib/postgresql/<version>/bin."""
    if found := shutil.which("initdb"):
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Cluster:
    port: int

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"


def _as_owner() -> dict[str, str]:
    return {"user": "nobody", "group": "nogroup"} if os.geteuid() == 0 else {}


class NoPostgres(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


@contextlib.contextmanager
def cluster() -> Iterator[Cluster]:
    bin_dir = server_bin()
    if bin_dir is None:
        raise NoPostgres(
            "PostgreSQL is not installed (Debian: apt-get install postgresql; `make test` installs it)"
        )
    top = Path(tempfile.mkdtemp(prefix="zhian-pg-"))
    data, log = top / "data", top / "server.log"
    owner = _as_owner()
    if owner:
        shutil.chown(top, owner["user"], owner["group"])
    run = {"check": True, "capture_output": True, "timeout": 120, **owner}
    try:
        subprocess.run(
            [bin_dir / "initdb", "-D", data, "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-sync"],
            **run,
        )  # type: ignore[call-overload]
        for _attempt in range(5):
            port = _free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories='' -c fsync=off"
            )
            started = subprocess.run(
                [bin_dir / "pg_ctl", "-D", data, "-l", log, "-o", options, "-w", "-t", "60", "start"],
                **(run | {"check": False}),
            )  # type: ignore[call-overload]
            if started.returncode == 0:
                break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"PostgreSQL did not start: {log.read_text(errors='replace')[-2000:]}")
        try:
            yield Cluster(port)
        finally:
            subprocess.run(
                [bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"], **(run | {"check": False})
            )  # type: ignore[call-overload]
    finally:
        shutil.rmtree(top, ignore_errors=True)
