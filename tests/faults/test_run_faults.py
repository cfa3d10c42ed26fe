"""The fault campaign at the level of a whole run: each fault costs its own finding on the device that
has it, the run completes (or stops in one line with its exit code), nothing collected before is
lost, and the chain verifies."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from simulator.tls import make_site_tls
from tests.faults.hostile_peers import BOMB, Sent, drip, fixed, flood, hung, serve
from tests.faults.run_helpers import error_lines, findings, write_config, zhian_run
from zhian.cli import main
from zhian.evidence.reader import LedgerReader
from zhian.evidence.verify import verify

ANY = "/{tail:.*}"
MALFORMED = b"<?xml version='1.0'?><s:Envelope xmlns:s='http://www.w3.org/2003/05/soap-envelope'><s:Body>"


def camera(device: str, port: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": device,
        "host": "127.0.0.1",
        "port": port,
        "area": "gate",
        "credentials": "cameras",
        "tls": False,
        **extra,
    }


@pytest.mark.slow
async def test_hostile_devices_each_cost_their_own_finding(tmp_path: Path) -> None:
    mine, theirs = (
        make_site_tls(tmp_path / "mine", "mine", ["127.0.0.1"]),
        make_site_tls(tmp_path / "theirs", "theirs", ["127.0.0.1"]),
    )
    sent = Sent()
    peers = {
        "cam-hung": {("POST", ANY): hung},
        "cam-drip": {("POST", ANY): drip(0.5)},
        "cam-malformed": {("POST", ANY): fixed(MALFORMED)},
        "cam-bomb": {("POST", ANY): fixed(BOMB)},
        "cam-flood": {("POST", ANY): flood(sent, 64 << 20)},
        "cam-refuses": {("POST", ANY): fixed(b"", status=401)},
    }
    expected = {
        "cam-hung": {"unreachable"},
        "cam-drip": {"unreachable"},
        "cam-malformed": {"protocol_violation"},
        "cam-bomb": {"protocol_violation"},
        "cam-flood": {"reply_too_large"},
        "cam-refuses": {"auth_failed"},
        "cam-wrong-ca": {"protocol_violation", "certificate_untrusted", "certificate_invalid"},
    }
    async with (
        serve(peers["cam-hung"]) as p1, serve(peers["cam-drip"]) as p2, serve(peers["cam-malformed"]) as p3,
        serve(peers["cam-bomb"]) as p4, serve(peers["cam-flood"]) as p5, serve(peers["cam-refuses"]) as p6,
        serve({("POST", ANY): fixed(b"")}, tls=theirs.server_context()) as p7,
    ):  # fmt: skip
        ports = dict(zip(expected, (p1, p2, p3, p4, p5, p6, p7), strict=True))
        cams = [camera(d, p, **({"tls": True} if d == "cam-wrong-ca" else {})) for d, p in ports.items()]
        config = write_config(
            tmp_path / "site.yaml",
            {"cameras": cams},
            ca_file=str(mine.ca_file),
            sampling={"mode": "monitoring"},
            limits={"call_timeout_s": 2, "probe_timeout_s": 20, "max_reply_bytes": 1 << 20},
        )
        code, _, stderr = await zhian_run(config, tmp_path / "run", "--key-dir", str(tmp_path / "keys"))
    assert code == 0 and not error_lines(stderr), stderr
    rows = findings(tmp_path / "run")
    for device, reasons in expected.items():
        mine_rows = [r for r in rows if r["device"] == device]
        assert mine_rows and all(r["status"] != "pass" for r in mine_rows), (device, mine_rows)
        seen = {r["reason"] for r in mine_rows if r["status"] in ("error", "fail")}
        assert seen & reasons, (device, seen)
    assert sent.requests and sent.bytes < sent.requests * (16 << 20)  # each cut at the bound, not drained
    artefacts = (tmp_path / "run" / "artefacts").glob("*")
    assert all(p.stat().st_size <= 1 << 20 for p in artefacts)
    result = verify(tmp_path / "run")
    assert result.ok and result.records > len(rows)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda inv: inv["cameras"].append({**inv["cameras"][0], "port": 10}), "used twice"),
        (lambda inv: inv["cameras"].append({**inv["cameras"][0], "id": "cam-2"}), "also the address"),
        (lambda inv: inv["cameras"][0].update(port="eighty"), "port"),
    ],
    ids=["duplicate-id", "duplicate-address", "malformed"],
)
def test_a_bad_config_is_refused_in_plain_lines_and_no_run(
    tmp_path: Path,
    change: Any,
    says: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ZHIAN_FAULT_PASSWORD", "Hostile-Pass-7")
    inventory = {"cameras": [camera("cam-1", 9)]}
    change(inventory)
    config = write_config(tmp_path / "site.yaml", inventory)
    assert main(["run", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert all(line.startswith(f"zhian: error: {config}:") for line in lines), err
    assert says in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


@pytest.fixture
def small_disk(tmp_path: Path) -> Any:
    """A 600 KiB tmpfs (root only): small enough that a run fills it."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root: the disk-full path is also covered in tests/unit")
    where = tmp_path / "disk"
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(where)], check=False)
    if done.returncode != 0:
        pytest.skip("this machine does not let the test mount a tmpfs")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.mark.slow
async def test_a_full_disk_stops_the_run_keeping_every_record(small_disk: Path, tmp_path: Path) -> None:
    padding = "x" * 6000  # every exchange carries it back: the disk fills after a few dozen
    reply = fixed(b"<a>" + padding.encode() + b"</a>")
    async with contextlib.AsyncExitStack() as stack:
        ports = [await stack.enter_async_context(serve({("POST", ANY): reply})) for _ in range(30)]
        cams = [camera(f"cam-{n:02d}", port) for n, port in enumerate(ports)]
        config = write_config(tmp_path / "site.yaml", {"cameras": cams})
        out = small_disk / "run"
        code, _, stderr = await zhian_run(config, out, "--key-dir", str(tmp_path / "keys"))
    lines = error_lines(stderr)
    assert code == 6 and len(lines) == 1 and "seal --recover" in lines[0], stderr
    before = verify(out)
    assert before.unsealed and before.records > 1, before.listed()  # valid as far as it was written
    # the run's own run_end may still fit (the failed group rolled back frees its WAL space)
    reader = LedgerReader(out)
    ends = [r.body["ending"] for r in reader.records() if r.kind == "run_end"]
    reader.close()
    assert ends in ([], ["no_space"])
    grown = await asyncio.create_subprocess_exec("mount", "-o", "remount,size=64m", str(small_disk))
    assert await grown.wait() == 0  # room again: now what was kept can be sealed
    assert main(["seal", "--recover", str(out), "--key-dir", str(tmp_path / "keys")]) == 0
    after = verify(out)
    assert after.ok and after.records == before.records + (0 if ends else 1)  # recovery's run_end
