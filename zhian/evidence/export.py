"""`zhian export`: a run directory (or one monitor segment) as one self-contained ZIP an evaluator can
open offline, years later.

The pack holds the sealed run under `run/` (so `zhian verify run/` works on the unzipped pack as is)
and `viewer.html`, one file that re-checks the chain and the signature in the browser. A run that
does not verify is refused, or with `force` packed with NOT-VERIFIED.txt listing its problems, so a
broken pack is never mistaken for a good one. Entries are sorted and time-stamped alike, so the same
run always gives the same pack bytes, and the pack's sha256 can be quoted in a report.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from mapping.catalog import load_catalog
from zhian.errors import UsageError
from zhian.evidence.chain import GENESIS, LedgerError, Row
from zhian.evidence.keys import PRIVATE_FILE, default_key_dir
from zhian.evidence.manifest import MANIFEST, SIGNATURE, TRANSIENT_SUFFIXES, file_sha256, sealed_files
from zhian.evidence.reader import LedgerReader
from zhian.evidence.segments import is_segment, segment_start, verify_segment
from zhian.evidence.verify import Verification, verify
from zhian.report.messages import LANGS, load_table
from zhian.report.write import REPORTS_DIR

RUN_PREFIX = "run/"
VIEWER = "viewer.html"
VIEWER_WORDS = (
    "status.",
    "reason.",
    "detail.",
    "effect.",
    "verdict.",
    "viewer.",
    "screen.sampling.",
    "kind.",
    "run.",
)
NOT_VERIFIED = "NOT-VERIFIED.txt"
# The small sealed files the viewer shows, embedded byte for byte so it can check them against the manifest.
SHOWN_FILES = ("run.json", "score.json", "verdicts.yaml")
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Pack:
    path: Path
    size: int
    sha256: str
    verification: Verification


def export_pack(run_dir: Path, pack: Path, *, force: bool = False) -> Pack:
    """Write the pack for `run_dir` to `pack`; refuse a run that does not verify unless `force`."""
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: not a run directory")
    if pack.resolve().is_relative_to(run_dir.resolve()):
        raise UsageError(f"{pack}: write the pack outside the run directory (it would break its seal)")
    result = verify_segment(run_dir) if is_segment(run_dir) else verify(run_dir)
    if not result.ok and not force:
        raise UsageError(f"{run_dir}: will not export a run that does not verify: {result.listed()[0]}")
    files = pack_files(run_dir)
    entries: list[tuple[str, Path | bytes]] = [(RUN_PREFIX + name, path) for name, path in files]
    entries.append((VIEWER, viewer_html(run_dir, result)))
    if not result.ok:
        entries.append((NOT_VERIFIED, not_verified_text(result).encode()))
    write_zip(pack, entries)
    return Pack(pack, pack.stat().st_size, file_sha256(pack), result)


def pack_files(run_dir: Path) -> list[tuple[str, Path]]:
    """Every file of the run (the sealed ones, and with `force` whatever else is there), never a key."""
    key_dir = default_key_dir()
    if key_dir.resolve().is_relative_to(run_dir.resolve()):
        raise UsageError(f"{run_dir}: holds the signing key folder {key_dir}; will not pack it")
    names = [MANIFEST, SIGNATURE] + [p.relative_to(run_dir).as_posix() for p in sealed_files(run_dir)]
    files = [
        (n, run_dir / n) for n in names if (run_dir / n).is_file() and not n.endswith(TRANSIENT_SUFFIXES)
    ]
    for name, path in files:
        if path.name == PRIVATE_FILE or _is_private_key(path):
            raise UsageError(f"{run_dir / name}: a private key; it must never travel with a pack")
    return sorted(files)


def _is_private_key(path: Path) -> bool:
    with path.open("rb") as handle:
        head = handle.read(100).lstrip()
    return head.startswith(b"-----BEGIN ") and b"PRIVATE KEY-----" in head


def write_zip(pack: Path, entries: Iterable[tuple[str, Path | bytes]]) -> None:
    """A reproducible ZIP: sorted names, one fixed time stamp and mode, written whole or not at all."""
    tmp = pack.with_name(f".{pack.name}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w") as archive:
            for name, source in sorted(entries, key=lambda entry: entry[0]):
                info = zipfile.ZipInfo(name, ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.create_system = 3  # unix, so the mode below is read
                info.external_attr = 0o644 << 16
                if isinstance(source, bytes):
                    archive.writestr(info, source)
                else:
                    with source.open("rb") as src, archive.open(info, "w") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
        tmp.replace(pack)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"{pack}: cannot write the pack ({exc.strerror})") from None


def not_verified_text(result: Verification) -> str:
    lines = [
        "此证据包未通过验证，不能作为证据使用。",
        "THIS EVIDENCE PACK DID NOT VERIFY. Do not rely on it as evidence.",
        "",
        "It was exported with --force. `zhian verify` found, at export:",
        *(f"- {problem}" for problem in result.listed()),
    ]
    return "\n".join(lines) + "\n"


def viewer_html(run_dir: Path, result: Verification) -> bytes:
    """viewer.html: the template with its style, script and the run's data inlined, under a CSP that
    lets only that script and style run and nothing load (so the viewer cannot reach any network)."""
    folder = resources.files("zhian.evidence") / "viewer"
    style = (folder / "viewer.css").read_text(encoding="utf-8")
    script = (folder / "viewer.js").read_text(encoding="utf-8")
    values = {
        "STYLE": style,
        "SCRIPT": script,
        "STYLE_HASH": _csp_hash(style),
        "SCRIPT_HASH": _csp_hash(script),
        "DATA": script_json(viewer_data(run_dir, result)),
    }
    template = (folder / "viewer.html").read_text(encoding="utf-8")
    return re.sub(r"@([A-Z_]+)@", lambda m: values[m.group(1)], template).encode()


def _csp_hash(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def script_json(value: Any) -> str:
    """JSON that cannot end its <script> block or open a comment there: <, >, & and the JS line
    separators only ever occur inside JSON strings, where their \\u escapes mean the same."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    for char in "<>&\u2028\u2029":
        text = text.replace(char, f"\\u{ord(char):04x}")
    return text


def viewer_data(run_dir: Path, result: Verification) -> dict[str, Any]:
    """What the viewer shows and re-checks: every record's exact hashed body, the manifest's exact
    bytes and its signature, the shown files' exact bytes, and what `zhian verify` said at export."""
    records, ledger_error = _records(run_dir)
    return {
        "schema": "zhian.viewer/1",
        "records": records,
        "ledger_error": ledger_error,
        # a monitor segment's first record follows the previous segment's head (its sealed segment.json)
        "chain_start": segment_start(run_dir) if is_segment(run_dir) else GENESIS,
        "manifest_b64": _b64_file(run_dir / MANIFEST),
        "signature_b64": _signature(run_dir / SIGNATURE),
        "files_b64": {n: b for n in SHOWN_FILES if (b := _b64_file(run_dir / n)) is not None},
        "verdicts": _verdicts(run_dir / "verdicts.yaml"),
        "export": {"verified": result.ok, "problems": result.listed()},
        "words": viewer_words(),
        "titles": indicator_titles(),
        "reports": sorted(p.name for p in (run_dir / REPORTS_DIR).glob("report.*.html")),
    }


def viewer_words() -> dict[str, dict[str, str]]:
    """The report's own words (statuses, reason phrases, finding sentences, effects) from its
    catalogues, so the viewer says what the report says."""
    table = load_table()
    keys = [k for k in table if k.startswith(VIEWER_WORDS)]
    return {lang: {k: table[k][lang] for k in keys} for lang in LANGS}


def indicator_titles() -> dict[str, dict[str, str]]:
    return {
        i.id: {"zh": i.text_zh or i.text_en or "", "en": i.text_en or i.text_zh or ""} for i in load_catalog()
    }


def _records(run_dir: Path) -> tuple[list[dict[str, Any]], str | None]:
    try:
        reader = LedgerReader(run_dir)
    except LedgerError as exc:
        return [], str(exc)
    try:
        return [_record(row) for row in reader.rows()], None
    finally:
        reader.close()


def _record(row: Row) -> dict[str, Any]:
    out: dict[str, Any] = {
        "seq": row.seq,
        "id": row.id,
        "kind": row.kind,
        "probe": row.probe,
        "device": row.device,
        "started_at": row.started_at,
        "hash": row.hash,
        "prev_hash": row.prev_hash,
    }
    try:
        out["body"] = row.body.decode("utf-8")  # the exact hashed bytes, as the string they encode
    except UnicodeDecodeError:
        out["body_b64"] = base64.b64encode(row.body).decode()  # a damaged body, kept byte for byte
    return out


def _b64_file(path: Path) -> str | None:
    return base64.b64encode(path.read_bytes()).decode() if path.is_file() else None


def _signature(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _verdicts(path: Path) -> dict[str, Any]:
    """verdicts.yaml parsed for display (the browser reads no YAML); its bytes are checked separately."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    verdicts = doc.get("verdicts") if isinstance(doc, dict) else None
    if not isinstance(verdicts, dict):
        return {}
    shown: dict[str, Any] = json.loads(json.dumps({str(k): v for k, v in verdicts.items()}, default=str))
    return shown
