"""`write_report`: render a run directory's report in one format and write it where it belongs.

By default into RUN_DIR/reports/report.<lang>.<ext>; re-sealing the run's manifest after that is
the caller's business (the run's end, `make demo`, the export pack), so this module never signs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Literal

from zhian.errors import UsageError
from zhian.report.build import build_report
from zhian.report.html import render_html
from zhian.report.junit import render_junit
from zhian.report.markdown import render_markdown
from zhian.report.model import Lang, Report
from zhian.report.oscal import render_oscal

Format = Literal["html", "md", "json", "junit", "oscal"]
REPORTS_DIR = "reports"
EXTENSIONS: dict[Format, str] = {
    "html": "html",
    "md": "md",
    "json": "json",
    "junit": "junit.xml",
    "oscal": "oscal.json",
}


def render_json(report: Report) -> str:
    return json.dumps(report.as_dict(), ensure_ascii=False, indent=2) + "\n"


RENDERERS: dict[Format, Callable[[Report], str]] = {
    "html": render_html,
    "md": render_markdown,
    "json": render_json,
    "junit": render_junit,
    "oscal": render_oscal,
}


def default_path(run_dir: Path, fmt: Format, lang: Lang) -> Path:
    return run_dir / REPORTS_DIR / f"report.{lang}.{EXTENSIONS[fmt]}"


def write_report(
    run_dir: Path,
    fmt: Format,
    lang: Lang,
    evaluator: Path | None,
    out: Path | None,
    *,
    today: date | None = None,
) -> Path:
    """Build the report of `run_dir` (with the evaluator's file, if any) and write it; returns the path.

    `today` is the report date when the evaluator's file gives none (default: the local date).
    """
    text = RENDERERS[fmt](build_report(run_dir, lang, evaluator, today))
    return write_text(text, out or default_path(run_dir, fmt, lang))


def write_text(text: str, path: Path) -> Path:
    """Write `text` to `path` atomically (a half-written report never replaces a whole one)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror or exc}") from None
    return path
