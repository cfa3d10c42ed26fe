"""`write_report`: render a run directory's report in one format and write it where it belongs.

By default into RUN_DIR/reports/report.<lang>.<ext>; re-sealing the run's manifest after that is
the caller's business (the run's end, `make demo`, the export pack), so this module never signs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path
from typing import Literal

from zhian.errors import UsageError
from zhian.report.build import build_parts, build_report
from zhian.report.html import html_parts, render_html
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
    path = out or default_path(run_dir, fmt, lang)
    if fmt == "html":  # written as it is rendered: a large run's page is tens of megabytes
        parts = build_parts(run_dir, lang, evaluator, today)
        return write_chunks(html_parts(parts.head, parts.finding_views(), parts.evidence_views()), path)
    return write_text(RENDERERS[fmt](build_report(run_dir, lang, evaluator, today)), path)


def write_text(text: str, path: Path) -> Path:
    """Write `text` to `path` atomically (a half-written report never replaces a whole one)."""
    return write_chunks((text,), path)


def write_chunks(chunks: Iterable[str], path: Path) -> Path:
    """Write the chunks to `path` as they come, atomically: into a temporary file renamed at the end,
    removed when anything (a bad record, a signal) stops the writing."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("w", encoding="utf-8") as handle:
            for chunk in chunks:
                handle.write(chunk)
        tmp.replace(path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise UsageError(f"{path}: {exc.strerror or exc}") from None
        raise
    return path
