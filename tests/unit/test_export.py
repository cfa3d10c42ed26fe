"""`zhian export`: the evidence pack is complete, reproducible, honest about a broken run, never holds a
key, and its offline viewer re-verifies the run in a real (headless) browser without any network."""

from __future__ import annotations

import json
import sqlite3
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from probes.finding import Finding
from tests.browser import Page, open_page
from zhian.cli import main
from zhian.errors import UsageError
from zhian.evidence.export import ZIP_TIME, export_pack, script_json
from zhian.evidence.verify import verify

from .evidence_helpers import make_run

FILES = {
    "findings.jsonl": '{"probe": "retention", "device": "cam-00", "status": "fail"}\n',
    "score.json": json.dumps({"grade": None, "levels": {"A": {"total": 5.5, "max": 100}}}),
    "run.json": json.dumps({"run_id": "r1", "community": {"name": "阳光花园"}}, ensure_ascii=False),
    "verdicts.yaml": "verdicts:\n  A2.3.4: {status: fail, source: machine, note: short}\n",
}
FINDINGS = (
    Finding("retention", "cam-00", "fail", "retention_short", "12 days", {"days": 12}, ("x0000", "x0001")),
    Finding("retention", "cam-01", "pass", "retention_ok", "95 days kept", {"days": 95}, ("x0001",)),
)
INJECTION = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script></script><!-- \u2028 <b>b</b>'
RESULT = "window.zhianVerification"


def full_run(run_dir: Path, response: str | None = None) -> Path:
    make_run(run_dir, key_dir=run_dir.parent / "keys", response=response, findings=FINDINGS, files=FILES)
    (run_dir / "reports").mkdir(exist_ok=True)
    return run_dir


def view(pack: Path, tmp_path: Path, expression: str = RESULT) -> Page:
    """Open the pack's viewer as an evaluator would: unzipped, from disk, offline."""
    with zipfile.ZipFile(pack) as archive:
        archive.extract("viewer.html", tmp_path / "unzipped")
    page = open_page(tmp_path / "unzipped" / "viewer.html", expression)
    assert page.exceptions == [] and page.console == [], (page.exceptions, page.console)
    assert page.requests == [], page.requests  # nothing loaded from anywhere
    return page


def test_the_pack_holds_the_sealed_run_and_a_viewer_and_is_reproducible(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = full_run(tmp_path / "run")
    first, second = tmp_path / "a.zip", tmp_path / "b.zip"
    assert main(["export", str(run), "--pack", str(first)]) == 0
    out = capsys.readouterr().out
    pack = export_pack(run, second)
    assert first.read_bytes() == second.read_bytes()
    assert f"{first}: {pack.size} bytes, sha256 {pack.sha256}" in out
    with zipfile.ZipFile(first) as archive:
        names = archive.namelist()
        assert names == sorted(names)
        assert all(info.date_time == ZIP_TIME for info in archive.infolist())
        sealed = [n for n in names if n.startswith("run/")]
        assert {"run/ledger.sqlite", "run/manifest.json", "run/manifest.sig", "run/run.json"} <= set(sealed)
        assert len([n for n in sealed if n.startswith("run/artefacts/")]) == 2
        assert set(names) - set(sealed) == {"viewer.html"}
        for name in sealed:
            assert archive.read(name) == (run / name.removeprefix("run/")).read_bytes()
        archive.extractall(tmp_path / "unzipped")
    assert verify(tmp_path / "unzipped" / "run").ok  # `zhian verify run/` works on the unzipped pack


def test_a_run_that_does_not_verify_is_refused_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = full_run(tmp_path / "run")
    (run / "verdicts.yaml").write_text("verdicts: {A2.3.4: {status: pass}}\n", encoding="utf-8")
    pack = tmp_path / "pack.zip"
    assert main(["export", str(run), "--pack", str(pack)]) == 2
    assert "will not export a run that does not verify: verdicts.yaml: altered" in capsys.readouterr().err
    assert not pack.exists()
    assert main(["export", str(run), "--pack", str(pack), "--force"]) == 1
    assert "NOT verified: exported anyway (--force)" in capsys.readouterr().out
    with zipfile.ZipFile(pack) as archive:
        notice = archive.read("NOT-VERIFIED.txt").decode()
    assert notice.startswith("此证据包未通过验证")
    assert "- verdicts.yaml: altered since it was sealed (sha256 differs)" in notice


def test_no_key_ever_goes_into_a_pack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = full_run(tmp_path / "run")
    with pytest.raises(UsageError, match="outside the run directory"):
        export_pack(run, run / "pack.zip")
    monkeypatch.setenv("ZHIAN_KEY_DIR", str(run / "keys"))
    with pytest.raises(UsageError, match="holds the signing key folder"):
        export_pack(run, tmp_path / "pack.zip")
    monkeypatch.setenv("ZHIAN_KEY_DIR", str(tmp_path / "keys"))
    pem = (tmp_path / "keys" / "ed25519.pem").read_bytes()
    make_run(tmp_path / "leaky", key_dir=tmp_path / "keys", files={"notes.txt": pem.decode()})
    assert verify(tmp_path / "leaky").ok  # sealed with the key copied in: verifying is not enough
    with pytest.raises(UsageError, match=r"notes\.txt: a private key"):
        export_pack(tmp_path / "leaky", tmp_path / "pack.zip", force=True)
    assert not (tmp_path / "pack.zip").exists()


def test_embedded_data_cannot_leave_its_script_block() -> None:
    text = script_json({"response": INJECTION})
    assert not set(text) & set("<>&\u2028\u2029")
    assert json.loads(text) == {"response": INJECTION}


def test_the_viewer_reverifies_a_good_pack_in_the_browser(tmp_path: Path) -> None:
    run = full_run(tmp_path / "run")
    export_pack(run, tmp_path / "pack.zip")
    both_languages = f"{RESULT}.then(r => {{ document.getElementById('lang').click(); "
    both_languages += "return {...r, english: document.getElementById('banner').textContent}; })"
    page = view(tmp_path / "pack.zip", tmp_path, both_languages)
    result: dict[str, Any] = page.value
    assert result["verified"] and result["signature"] == "ok" and result["problems"] == []
    assert result["records"] == result["checked"] == 8  # run_start, 5 exchanges, 2 findings: each re-hashed
    assert result["banner"].startswith("✔ 链已验证 / 签名有效（8 条记录逐条重算）：签名者 sha256:")
    assert result["banner"].endswith("请与评价机构公布的公钥指纹核对")  # a valid signature, not a trusted one
    assert result["english"].startswith(
        "✔ chain verified / signature valid (8 records re-hashed): signed by sha256:"
    )
    assert page.screenshot.startswith(b"\x89PNG\r\n\x1a\n")


def test_the_viewer_names_the_broken_record_of_a_tampered_run(tmp_path: Path) -> None:
    run = full_run(tmp_path / "run")
    with sqlite3.connect(run / "ledger.sqlite") as db:
        body = db.execute("SELECT body FROM records WHERE seq = 4").fetchone()[0]
        db.execute("UPDATE records SET body = ? WHERE seq = 4", (body.replace(b'"ok":true', b'"ok":false'),))
    db.close()
    export_pack(run, tmp_path / "pack.zip", force=True)
    result: dict[str, Any] = view(tmp_path / "pack.zip", tmp_path).value
    assert not result["verified"] and result["broken"] == 4 and result["checked"] == 3
    named = "记录 4（exchange，探针 retention，设备 cam-02）：内容与其哈希不符"
    assert result["banner"] == f"✘ 未通过验证：{named}"


def test_html_in_a_device_reply_is_shown_as_text(tmp_path: Path) -> None:
    run = full_run(tmp_path / "run", response=INJECTION)
    export_pack(run, tmp_path / "pack.zip")
    expression = f"""{RESULT}.then(() => {{
        document.querySelectorAll("button.evidence").forEach(button => button.click());
        const shown = [...document.querySelectorAll("pre")].map(p => p.textContent);
        return {{
            pwned: window.pwned ?? null,
            injected: document.querySelectorAll("img, b, main script").length,
            shown: shown.filter(text => text === {json.dumps(INJECTION)}).length,
        }};
    }})"""
    shown = view(tmp_path / "pack.zip", tmp_path, expression).value
    assert shown == {"pwned": None, "injected": 0, "shown": 3}


def test_the_viewer_rejects_a_manifest_edited_after_signing(tmp_path: Path) -> None:
    run = full_run(tmp_path / "run")
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"]["verdicts.yaml"] = "0" * 64
    (run / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    export_pack(run, tmp_path / "pack.zip", force=True)
    result: dict[str, Any] = view(tmp_path / "pack.zip", tmp_path).value
    assert not result["verified"] and result["signature"] == "bad" and result["broken"] is None
    assert result["banner"] == "✘ 未通过验证：manifest.sig 与 manifest.json 不符（签名无效）"
    assert "verdicts.yaml：封存后被改动（sha256 不符）" in result["problems"]


VIEWER_PAGE = f"""{RESULT}.then(r => ({{
  banner: document.getElementById('banner').textContent,
  groups: [...document.querySelectorAll('#groups h3')].map(h => [h.firstChild.textContent, h.textContent]),
  reports: [...document.querySelectorAll('#summary a')].map(a => a.getAttribute('href')),
  compare: document.querySelector('#summary .compare')?.textContent,
  summary: document.getElementById('summary').textContent,
  badges: [...document.querySelectorAll('#groups .badge')].map(b => b.textContent),
}}))"""


@pytest.mark.slow
def test_the_viewer_speaks_the_reports_words_problems_first(tmp_path: Path) -> None:
    from mapping.catalog import load_catalog
    from zhian.report.messages import load_table

    from .fixtures.report.runs import write_run

    run = write_run(tmp_path / "run")
    assert main(["report", str(run), "--into-run", "--key-dir", str(tmp_path / "keys")]) == 0
    export_pack(run, tmp_path / "pack.zip")
    shown: dict[str, Any] = view(tmp_path / "pack.zip", tmp_path, VIEWER_PAGE).value
    assert shown["reports"] == ["run/reports/report.zh.html"]  # the report in the pack, one click away
    assert "评价机构公布的公钥指纹" in shown["compare"]
    assert "检测范围：清单中的全部设备（未抽样）" in shown["summary"]  # says whether a sample was taken
    table = load_table()
    statuses = {table[f"status.{s}"]["zh"] for s in ("pass", "fail", "partial", "error", "not_assessed")}
    assert shown["badges"] and set(shown["badges"]) <= statuses  # 不符合, never 不通过
    verdicts = yaml.safe_load((run / "verdicts.yaml").read_text("utf-8"))["verdicts"]
    first, heading = shown["groups"][0]
    assert verdicts[first]["status"] == "fail"  # problems first
    assert load_catalog().get(first).text_zh in heading  # the indicator's text beside its id
    assert "1 fail" not in heading  # the verdict line in the report's words
