"""`zhian archive serve` as its own process on loopback, read by headless Chromium: the portfolio and a
community page render with no error and no request beyond their own stylesheet, every link resolves,
and a run's evidence pack downloads and verifies with `zhian verify`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.archive.helpers import trusted
from tests.browser import Page, chromium_or_skip, open_url
from zhian.cli import main

PAGE_FACTS = """JSON.stringify({
  title: document.title,
  rows: [...document.querySelectorAll('table tbody tr')]
    .map(tr => tr.closest('table').className + ': ' + tr.innerText),
  links: [...document.querySelectorAll('a')].map(a => a.href),
})"""


@pytest.fixture
def server(two_communities: str, tmp_path: Path) -> Iterator[str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "zhian.cli",
            "archive",
            "serve",
            "--db",
            two_communities,
            "--listen",
            "127.0.0.1:0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "ZHIAN_KEY_DIR": str(tmp_path / "server-keys")},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the server prints its address once it listens
        assert "serving the portfolio read-only on http://127.0.0.1:" in line, (
            proc.stderr and proc.stderr.read()
        )
        yield line.split(" on ", 1)[1].strip()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
        assert proc.returncode == 0 and "stopped" in out


async def _fetch(url: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as http, asyncio.timeout(30), http.request(method, url) as reply:
        return reply.status, dict(reply.headers), await reply.read()


def _clean(page: Page) -> None:
    assert not page.exceptions, page.exceptions
    assert not [c for c in page.console if c.startswith(("error", "warning"))], page.console


@pytest.mark.slow
def test_portfolio_and_community_pages_in_chromium(server: str) -> None:
    chromium_or_skip()
    page = open_url(server, PAGE_FACTS)
    _clean(page)
    assert page.requests == [server + "style.css"]  # nothing else loads
    facts = json.loads(page.value)
    rows = facts["rows"]
    assert len(rows) == 2
    graded = next(r for r in rows if "测试小区" in r)
    assert "C" in graded and "2031-11-30" in graded and "1 indicators" in graded
    assert "no graded run" in next(r for r in rows if "另一小区" in r)

    community = server + "community/1"  # 测试小区, pushed first
    assert community in facts["links"]
    for link in facts["links"]:
        assert asyncio.run(_fetch(link))[0] == 200, link
    page = open_url(community, PAGE_FACTS)
    _clean(page)
    facts = json.loads(page.value)
    assert facts["title"] == "测试小区"
    rows = facts["rows"]
    assert sum(r.startswith("runs:") for r in rows) == 2
    assert any(r.startswith("grades:") and "2026-12-01" in r and "C" in r for r in rows)
    assert any(r.startswith("problems:") and "A2.3.4" in r and "cam-gate" in r for r in rows)
    assert any(r.startswith("degraded:") and "C4.3.3" in r for r in rows)
    assert sum("/pack.zip" in link for link in facts["links"]) == 2


@pytest.mark.slow
def test_a_run_downloads_as_an_evidence_pack_that_verifies(
    server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, headers, body = asyncio.run(_fetch(server + "run/1/pack.zip"))
    assert status == 200 and headers["Content-Type"] == "application/zip"
    assert "default-src 'none'" not in headers.get("Content-Type", "")
    pack = tmp_path / "pack.zip"
    pack.write_bytes(body)
    with zipfile.ZipFile(pack) as z:
        z.extractall(tmp_path / "unpacked")
        assert "viewer.html" in z.namelist()
    capsys.readouterr()
    assert main(["verify", str(tmp_path / "unpacked" / "run"), *trusted(tmp_path)]) == 0
    assert "verified" in capsys.readouterr().out


@pytest.mark.slow
def test_the_site_is_read_only_and_says_what_is_not_there(server: str) -> None:
    assert asyncio.run(_fetch(server, "POST"))[0] == 405
    assert asyncio.run(_fetch(server + "community/1", "DELETE"))[0] == 405
    status, headers, _ = asyncio.run(_fetch(server + "community/999"))
    assert status == 404 and "default-src 'none'" in headers["Content-Security-Policy"]
    assert asyncio.run(_fetch(server + "run/999/pack.zip"))[0] == 404
