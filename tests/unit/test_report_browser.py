"""The HTML report in a real (headless) browser: it renders without errors, loads nothing, and shows
its parts, charts and evidence as a person opening the file would see them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.browser import open_page
from zhian.report.write import write_report

from .fixtures.report.runs import write_run

FIXTURES = Path(__file__).parent / "fixtures" / "report"
# What the page shows: the parts' headings, the SVG charts, and whether the evidence anchors resolve.
PROBE = """JSON.stringify({
  lang: document.documentElement.lang,
  h2: [...document.querySelectorAll('h2')].map(h => h.textContent.trim()),
  svgs: document.querySelectorAll('svg').length,
  scripts: document.querySelectorAll('script').length,
  brokenLinks: [...document.querySelectorAll('a[href^="#"]')]
    .filter(a => !document.getElementById(decodeURIComponent(a.getAttribute('href').slice(1))))
    .map(a => a.getAttribute('href')),
  height: document.documentElement.scrollHeight,
})"""


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_html_report_renders_in_chromium(tmp_path: Path, lang: str) -> None:
    run = write_run(tmp_path / "run")
    path = write_report(run, "html", "zh" if lang == "zh" else "en", FIXTURES / "evaluator.yaml", None)
    page = open_page(path, PROBE)
    assert page.exceptions == [] and page.console == [], (page.exceptions, page.console)
    assert page.requests == []  # self-contained: no font, image, style or script fetched
    shown = json.loads(page.value)
    assert shown["lang"].startswith(lang) and shown["scripts"] == 0
    assert shown["brokenLinks"] == []  # every evidence and problem link lands on its target
    assert shown["svgs"] >= 3  # retention, heartbeat and linkage charts
    part_one = "一、智慧住区安全建设概况" if lang == "zh" else "1."
    assert any(h.startswith(part_one) for h in shown["h2"]), shown["h2"]
    assert len(shown["h2"]) >= 5 and shown["height"] > 2000
    assert page.screenshot.startswith(b"\x89PNG")
    if folder := os.environ.get("ZHIAN_SCREENSHOTS"):  # for a person to look at
        (Path(folder) / f"report-first-page.{lang}.png").write_bytes(page.screenshot)


def _pdf_pages(chromium: str, html: Path, tmp_path: Path) -> int:
    import re
    import subprocess

    pdf = tmp_path / f"{html.stem}.pdf"
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
         "--no-pdf-header-footer", f"--print-to-pdf={pdf}", html.as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return len(re.findall(rb"/Type\s*/Page(?![a-z])", pdf.read_bytes()))


@pytest.mark.slow
def test_the_printed_report_leaves_the_raw_evidence_to_the_pack(tmp_path: Path) -> None:
    from tests.browser import chromium_or_skip

    chromium = chromium_or_skip()
    run = write_run(tmp_path / "run")
    printed = write_report(run, "html", "zh", None, tmp_path / "printed.html")
    text = printed.read_text(encoding="utf-8")
    assert "#a5 { display: none; }" in text and 'class="print-only note"' in text
    everything = tmp_path / "everything.html"  # the same report with the evidence appendix printed
    everything.write_text(text.replace("#a5 { display: none; }", ""), encoding="utf-8")
    assert 0 < _pdf_pages(chromium, printed, tmp_path) < _pdf_pages(chromium, everything, tmp_path)


# Each chart's words: inside the chart's own box, and none over another.
LABELS = """JSON.stringify([...document.querySelectorAll('svg.chart')].map(svg => {
  const vb = svg.viewBox.baseVal;
  const boxes = [...svg.querySelectorAll('text')].map(t => {
    const b = t.getBBox(); return {s: t.textContent, x: b.x, y: b.y, w: b.width, h: b.height};
  });
  const out = boxes.filter(b => b.x < -0.5 || b.y < -0.5 || b.x + b.w > vb.width + 0.5
    || b.y + b.h > vb.height + 0.5).map(b => b.s);
  const over = [];
  boxes.forEach((a, i) => boxes.slice(i + 1).forEach(b => {
    if (a.x < b.x + b.w - 1 && b.x < a.x + a.w - 1 && a.y < b.y + b.h - 1 && b.y < a.y + a.h - 1)
      over.push(a.s + ' / ' + b.s);
  }));
  const r = svg.getBoundingClientRect();
  return {title: svg.querySelector('title').textContent, out, over,
          fits: r.right <= document.documentElement.clientWidth + 0.5};
}))"""


@pytest.mark.parametrize("width", [1280, 640])
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_chart_labels_fit_in_both_languages(tmp_path: Path, lang: str, width: int) -> None:
    run = write_run(tmp_path / "run")
    path = write_report(run, "html", "zh" if lang == "zh" else "en", None, tmp_path / "r.html")
    charts = json.loads(open_page(path, LABELS, width=width).value)
    assert len(charts) >= 3
    for chart in charts:
        assert chart["out"] == [], (chart["title"], chart["out"])
        assert chart["over"] == [], (chart["title"], chart["over"])
        assert chart["fits"], chart["title"]
