"""Nothing a device says can become markup in any format: replies, details and facts carrying HTML,
XML breakers, Markdown specials and control characters stay text."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from zhian.report.escape import clean, esc
from zhian.report.markdown import md
from zhian.report.write import write_report

from .fixtures.report.runs import INJECTION, write_run

OUR_TAGS = {
    "html", "head", "meta", "title", "style", "body", "header", "nav", "ol", "li", "a", "section", "h1", "h2",
    "h3", "p", "span", "b", "br", "table", "thead", "tbody", "tr", "th", "td", "div", "pre", "svg", "line",
    "text", "rect", "path", "circle", "ul",
}  # fmt: skip


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.handlers: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.handlers += [name for name, _ in attrs if name.startswith("on")]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_run(tmp_path_factory.mktemp("escaping") / "run")


def test_html_injection_from_a_device_does_not_work(run: Path) -> None:
    html = write_report(run, "html", "en", None, run.parent / "r.html").read_text(encoding="utf-8")
    parser = Tags()
    parser.feed(html)
    assert parser.tags <= OUR_TAGS, parser.tags - OUR_TAGS
    assert parser.handlers == []
    assert "<script>alert(1)" not in html and "<img src=x" not in html and "\x00" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in html
    assert "\\x00" in html  # the control character is shown, not dropped silently


def outside_fences(text: str) -> str:
    """The Markdown a renderer interprets: everything but fenced code blocks."""
    kept: list[str] = []
    fence: str | None = None
    for line in text.splitlines():
        if fence is None and re.fullmatch(r"`{3,}", line):
            fence = line
        elif fence is not None and line == fence:
            fence = None
        elif fence is None:
            kept.append(line)
    assert fence is None, "a fence was left open"
    return "\n".join(kept)


def test_markdown_escapes_markup_and_fences_the_replies(run: Path) -> None:
    text = write_report(run, "md", "en", None, run.parent / "r.md").read_text(encoding="utf-8")
    assert "\x00" not in text
    interpreted = outside_fences(text)
    assert "<script>" not in interpreted and "<img" not in interpreted
    assert "plain HTTP &lt;script&gt;alert(1)&lt;/script&gt;" in interpreted
    assert "Server: <script>alert(1)</script>" in text  # only inside a fence, where nothing is markup
    assert md("a|b`c*d_e") == "a\\|b\\`c\\*d\\_e"


def test_junit_parses_with_control_characters_and_xml_breakers(run: Path) -> None:
    path = write_report(run, "junit", "en", None, run.parent / "r.xml")
    root = ET.parse(path).getroot()
    out = "".join(c.findtext("system-out") or "" for c in root.iter("testcase"))
    assert "<script>alert(1)</script>" in out and "]]>" in out and "\\x00" in out


def test_json_keeps_the_text_as_it_came(run: Path) -> None:
    doc = json.loads(write_report(run, "json", "en", None, run.parent / "r.json").read_text(encoding="utf-8"))
    finding = next(f for f in doc["findings"] if f["probe"] == "transport_security" and f["status"] == "fail")
    assert finding["detail"] == f"plain HTTP {INJECTION}" and finding["facts"]["banner"] == INJECTION


def test_escape_helpers() -> None:
    assert clean("a\x00b\x1bc\td\ne") == "a\\x00b\\x1bc\td\ne"
    assert esc("<a href='x'>&\"") == "&lt;a href=&#x27;x&#x27;&gt;&amp;&quot;"


def test_a_reply_holding_backticks_cannot_close_its_fence() -> None:
    from zhian.report.markdown import _fence

    opening, body, closing = _fence("x ```` y")
    assert opening == closing == "`````" and body == "x ```` y"
