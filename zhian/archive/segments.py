"""`zhian archive push STATE`: every sealed segment of a monitor's state directory, tied to its community.

Each segment not yet stored is verified on its own (chain from its previous head, signature, trusted
signer, files) and each link checked: a segment follows the one before it here, or, when the
segments before were pruned from the state directory, the one the archive holds. A segment already
stored (the sha256 of its manifest) was verified when it was pushed: only its link is checked. The
open segment (not sealed yet) is left for a later push. Nothing is written unless the whole chain
holds; then each new segment is stored in its own transaction, in chain order, like a run: its
records, every file, and from the state sealed with it (`state.json`) the final status of each
indicator (with since when) and the latest finding of each (probe, device) that does not pass (the
passing ones stay in the stored `state.json`), which the portfolio reads as the monitor's view. The
community comes from the monitor's `monitor_start` record, or for a segment without one from the
segment before it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mapping.catalog import load_catalog
from zhian.archive.blobs import Conn
from zhian.archive.portfolio import graded_run
from zhian.archive.push import (
    Pushed,
    Refused,
    community_id,
    copy_records,
    existing,
    require,
    store_files,
    text,
)
from zhian.evidence.chain import GENESIS, LedgerError, sha256
from zhian.evidence.manifest import MANIFEST, SIGNATURE
from zhian.evidence.reader import LedgerReader
from zhian.evidence.segments import SEGMENT_FILE, STATE_FILE, read_json, segment_dirs, verify_segment
from zhian.evidence.trust import TrustedKeys


@dataclass(frozen=True)
class StatePushed:
    segments: list[Pushed]
    open_segment: str | None  # left for a later push


@dataclass
class _Segment:
    path: Path
    doc: dict[str, Any]  # segment.json
    manifest: bytes
    head: str
    stored: Pushed | None

    @property
    def index(self) -> int:
        return int(self.doc.get("index") or 0)


@dataclass
class _Context:
    """What a segment inherits from the ones before it: the community and each finding's indicators."""

    community: dict[str, str] | None = None
    indicators: dict[tuple[str, str], list[str]] = field(default_factory=dict)


def is_state_dir(path: Path) -> bool:
    return (path / "segments").is_dir()


def push_state(conn: Conn, state_dir: Path, trust: TrustedKeys) -> StatePushed:
    segments = segment_dirs(state_dir)
    sealed = [s for s in segments if (s / MANIFEST).is_file()]
    still_open = segments[len(sealed) :]
    if segments[: len(sealed)] != sealed or len(still_open) > 1:
        first = next(s for s in segments if not (s / MANIFEST).is_file())
        raise Refused(f"{first}: not sealed but not the last segment (the monitor's next start seals it)")
    if not segments:
        raise Refused(f"{state_dir}: no monitor segment here")
    chain = _checked_chain(conn, state_dir, sealed, trust)
    context, follows_stored = _Context(), True  # the first one follows the archive's, if any
    pushed = []
    for segment in chain:
        if segment.stored is not None:
            pushed.append(segment.stored)
            follows_stored = True
            continue
        if follows_stored:
            context, follows_stored = _context_before(conn, segment), False
        _scan(segment.path, context)
        if context.community is None:
            raise Refused(f"{segment.path}: no monitor_start record names the community, here or before")
        pushed.append(_store(conn, segment, context))
    return StatePushed(pushed, still_open[0].name if still_open else None)


def _checked_chain(conn: Conn, state_dir: Path, sealed: list[Path], trust: TrustedKeys) -> list[_Segment]:
    """Every sealed segment verified (or known stored) and linked to the one before; refuses otherwise."""
    chain: list[_Segment] = []
    for path in sealed:
        try:
            doc = read_json(path / SEGMENT_FILE)
            data = (path / MANIFEST).read_bytes()
            manifest = json.loads(data)
        except (OSError, ValueError) as exc:
            raise Refused(f"{path}: not a readable segment ({exc})") from None
        stored = existing(conn, sha256(data))
        if stored is None:
            result = verify_segment(path)
            require(path, result, trust)
            head = result.chain_head
        else:
            head = str((manifest.get("ledger") or {}).get("chain_head") or doc.get("previous_head"))
        segment = _Segment(path, doc, data, head, stored)
        _check_link(conn, state_dir, segment, chain[-1] if chain else None)
        chain.append(segment)
    return chain


def _check_link(conn: Conn, state_dir: Path, segment: _Segment, before: _Segment | None) -> None:
    doc = segment.doc
    expected: tuple[int, str | None, str | None]
    if before is not None:
        if before.doc.get("monitor_id") != doc.get("monitor_id"):
            raise Refused(f"{segment.path}: another monitor's segment than {before.path.name}")
        expected = (before.index + 1, before.path.name, before.head)
    elif segment.index == 1:
        expected = (1, None, GENESIS)
    else:  # the segments before were removed from the state directory: the archive must hold the last
        row = conn.execute(
            "SELECT run_id, manifest FROM runs"
            " WHERE kind = 'segment' AND monitor_id = %s AND segment_index = %s",
            (str(doc.get("monitor_id")), segment.index - 1),
        ).fetchone()
        if row is None:
            raise Refused(
                f"{segment.path}: follows segment {segment.index - 1}, which is neither in {state_dir}"
                " nor in the archive (push the state directory before removing segments from it)"
            )
        head = (json.loads(bytes(row[1])).get("ledger") or {}).get("chain_head")  # type: ignore[call-overload]
        expected = (segment.index, str(row[0]).rpartition("/")[2], head)
    if (doc.get("index"), doc.get("previous"), doc.get("previous_head")) != expected:
        after = expected[1] or "the start"
        raise Refused(f"{segment.path}: does not follow {after} (the monitor's chain is broken here)")


def _context_before(conn: Conn, segment: _Segment) -> _Context:
    """The community and finding indicators of the stored segment before `segment`, if the archive
    holds it (it keeps the findings that do not pass: those a later board can still hold failing)."""
    index = segment.index - 1
    row = conn.execute(
        """SELECT r.id, c.name, c.operator, c.address, r.level_applied FROM runs r
           JOIN communities c ON c.id = r.community_id
           WHERE r.kind = 'segment' AND r.monitor_id = %s AND r.segment_index = %s""",
        (str(segment.doc.get("monitor_id")), index),
    ).fetchone()
    if row is None:
        return _Context()
    run, name, operator, address, level = row
    community = {"name": str(name), "operator": str(operator), "address": str(address),
                 "target_level": str(level or "")}  # fmt: skip
    found = conn.execute("SELECT probe, device, indicators FROM findings WHERE run = %s", (run,)).fetchall()
    return _Context(community, {(str(p), str(d)): list(i) for p, d, i in found})  # type: ignore[call-overload]


def _scan(path: Path, context: _Context) -> None:
    """The community a `monitor_start` names and the indicators each finding record names."""
    reader = LedgerReader(path)
    try:
        for row in reader.rows():
            if row.kind not in ("monitor_start", "finding"):
                continue
            body = json.loads(row.body)
            if row.kind == "monitor_start" and isinstance(body.get("community"), dict):
                context.community = {k: str(v or "") for k, v in body["community"].items()}
            elif row.kind == "finding":
                context.indicators[(str(body.get("probe")), str(body.get("device")))] = [
                    str(i) for i in body.get("indicators") or ()
                ]
    except LedgerError as exc:
        raise Refused(f"{path}: {exc}") from None
    finally:
        reader.close()


def _store(conn: Conn, segment: _Segment, context: _Context) -> Pushed:
    assert context.community is not None
    path, doc, data = segment.path, segment.doc, segment.manifest
    manifest = json.loads(data)
    state = read_json(path / STATE_FILE)
    c = context.community
    run_id = f"{doc.get('monitor_id')}/{path.name}"
    with conn.transaction():
        community = community_id(conn, c.get("name", ""), c.get("operator", ""), c.get("address", ""))
        row = conn.execute(
            """INSERT INTO runs (manifest_sha256, kind, run_id, community_id, graded_run, level_applied,
                   interrupted, started_at, finished_at, sealed_at, manifest, signature, signer,
                   monitor_id, segment_index, chain_start)
               VALUES (%s, 'segment', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (manifest_sha256) DO NOTHING RETURNING id""",
            (
                sha256(data),
                text(run_id),
                community,
                graded_run(conn, community, manifest["sealed_at"]),
                c.get("target_level") or None,
                bool(manifest.get("interrupted")),
                doc.get("opened_at"),
                doc.get("closed_at"),
                manifest["sealed_at"],
                data,
                (path / SIGNATURE).read_text(encoding="ascii").strip(),
                manifest["signed_by"]["fingerprint"],
                str(doc.get("monitor_id")),
                segment.index,
                doc.get("previous_head") or GENESIS,
            ),
        ).fetchone()
        if row is None:  # a concurrent push stored it
            found = existing(conn, sha256(data))
            assert found is not None
            return found
        run = int(str(row[0]))
        records = copy_records(conn, run, path, manifest, str(doc.get("previous_head") or GENESIS))
        _copy_state(conn, run, state, context)
        files = store_files(conn, run, path, manifest["files"])
    return Pushed(run, sha256(data), run_id, c.get("name", ""), records, files, True)


def _copy_state(conn: Conn, run: int, state: dict[str, Any], context: _Context) -> None:
    """The monitor's board as sealed with the segment: each indicator's status, each latest finding."""
    catalog = load_catalog()
    with conn.cursor().copy("COPY verdicts (run, indicator, level, status, since) FROM STDIN") as copy:
        for indicator, row in sorted((state.get("indicators") or {}).items()):
            if indicator in catalog:  # one this zhian no longer knows stays in the records only
                level = catalog.get(indicator).level
                copy.write_row((run, indicator, level, str(row.get("status")), row.get("since")))
    with conn.cursor().copy(
        "COPY findings (run, n, probe, device, status, reason, detail, indicators, evidence) FROM STDIN"
    ) as copy:
        open_problems = [
            f for _, f in sorted((state.get("findings") or {}).items()) if f.get("status") != "pass"
        ]
        for n, f in enumerate(open_problems, start=1):
            probe, device = str(f.get("probe")), str(f.get("device"))
            fields = (probe, device, str(f.get("status")), str(f.get("reason")), str(f.get("detail") or ""))
            copy.write_row(
                (run, n, *map(text, fields), context.indicators.get((probe, device), []),
                 [text(str(e)) for e in f.get("evidence") or ()])
            )  # fmt: skip
