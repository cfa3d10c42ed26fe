"""The monitor's ledger: one chain for years, written in segments that are each sealed and signed.

A segment is a run-like directory under `STATE/segments/` (its own `ledger.sqlite`, `artefacts/`,
`segment.json`, `state.json`, `manifest.json` and `manifest.sig`), so `zhian verify SEGMENT` checks
one day alone and the day can be handed over alone. Its first record follows the previous
segment's chain head (named in `segment.json`), so `zhian verify STATE` checks the whole chain: each
segment, and each link between two. A segment is closed at UTC midnight or past `max_bytes`, and on
a clean stop. A segment left open by a kill is sealed on the next start as recovered: its records
were committed one by one, so at most the record in flight is lost and the chain stays valid.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collectors.limits import DEFAULT_MAX_REPLY_BYTES
from zhian.evidence.chain import GENESIS
from zhian.evidence.keys import SigningKey
from zhian.evidence.ledger import Ledger, open_ledger
from zhian.evidence.manifest import MANIFEST, seal
from zhian.evidence.reader import LedgerReader
from zhian.evidence.storage import LEDGER_FILE
from zhian.evidence.verify import Verification, verify

SEGMENTS_DIR = "segments"
SEGMENT_FILE = "segment.json"
STATE_FILE = "state.json"
SCHEMA = "zhian.evidence.segment/1"


def write_json(path: Path, doc: Mapping[str, Any], *, compact: bool = False) -> None:
    """Atomically: a kill never leaves half a file. `compact` for the board's state, which at
    50,000 devices is 36 MB and 1.9 s of CPU indented, 26 MB and 0.7 s without (on the stop's path)."""
    tmp = path.with_name(f".{path.name}.tmp")
    layout: dict[str, Any] = {"separators": (",", ":")} if compact else {"indent": 2}
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(json.dumps(doc, ensure_ascii=False, default=str, **layout) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)


def read_json(path: Path) -> dict[str, Any]:
    doc = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: not a JSON object")
    return doc


def segment_dirs(state_dir: Path) -> list[Path]:
    """The segments in chain order (their names start with a zero-padded index)."""
    root = state_dir / SEGMENTS_DIR
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def is_segment(path: Path) -> bool:
    return (path / SEGMENT_FILE).is_file()


def segment_start(segment: Path) -> str:
    """The hash a segment's first record follows."""
    return str(read_json(segment / SEGMENT_FILE).get("previous_head") or GENESIS)


def sealed_head(segment: Path) -> str:
    ledger = read_json(segment / MANIFEST).get("ledger") or {}
    return str(ledger.get("chain_head") or segment_start(segment))


def records_of(segment: Path) -> Iterator[dict[str, Any]]:
    reader = LedgerReader(segment)
    try:
        for record in reader.records():
            yield record.body
    finally:
        reader.close()


@dataclass
class Resume:
    """Where a restarted monitor picks up: the state sealed last, and the records written after it
    (in segments a kill left open) to replay on top of it."""

    state: dict[str, Any]
    replay: list[dict[str, Any]] = field(default_factory=list)
    records: int = 0  # records in the whole chain so far


class SegmentedLedger:
    """Appends to the open segment, rolling to a new one at UTC midnight or past max_bytes."""

    def __init__(
        self,
        state_dir: Path,
        key: SigningKey,
        *,
        monitor_id: str,
        snapshot: Callable[[], Mapping[str, Any]],
        secrets: tuple[str, ...] = (),
        max_bytes: int = 256 << 20,
        max_artefact_bytes: int = DEFAULT_MAX_REPLY_BYTES,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.state_dir, self.key, self.monitor_id = state_dir, key, monitor_id
        self._snapshot, self._secrets, self.max_bytes, self.clock = snapshot, secrets, max_bytes, clock
        self.ledger: Ledger | None = None
        self.segment: Path | None = None
        self.opened_on: str | None = None
        self.records_total = 0  # in the whole chain, across restarts
        self.counts: dict[str, int] = {}  # by kind, since this process started
        self.max_artefact_bytes = max_artefact_bytes
        self._batched = False

    def resume(self) -> Resume:
        """Read what the segments hold, without changing anything yet."""
        segments = segment_dirs(self.state_dir)
        state: dict[str, Any] = {}
        replay: list[dict[str, Any]] = []
        total = 0
        for segment in segments:
            sealed = (segment / MANIFEST).is_file()
            bodies = list(records_of(segment)) if (segment / LEDGER_FILE).is_file() else []
            total += len(bodies)
            if sealed and (segment / STATE_FILE).is_file():
                state, replay = read_json(segment / STATE_FILE), []
            else:
                replay += bodies
        self.records_total = total
        return Resume(state, replay, total)

    def start(self) -> list[Path]:
        """Seal every segment a kill left open (as recovered), then open a new one. Returns the
        segments recovered."""
        recovered = [s for s in segment_dirs(self.state_dir) if not (s / MANIFEST).is_file()]
        for segment in recovered:
            self._seal(segment, recovered=True)
        self._open()
        return recovered

    def _open(self) -> None:
        segments = segment_dirs(self.state_dir)
        previous = segments[-1] if segments else None
        head = sealed_head(previous) if previous else GENESIS
        index = int(previous.name.split("-")[0]) + 1 if previous else 1
        now = self.clock()
        segment = self.state_dir / SEGMENTS_DIR / f"{index:06d}-{now:%Y%m%d}"
        segment.mkdir(parents=True)
        doc = {
            "schema": SCHEMA,
            "monitor_id": self.monitor_id,
            "index": index,
            "previous": previous.name if previous else None,
            "previous_head": head,
            "opened_at": now.isoformat(),
        }
        write_json(segment / SEGMENT_FILE, doc)
        self.ledger = open_ledger(
            segment,
            secrets=self._secrets,
            run_id=self.monitor_id,
            start=head,
            max_artefact_bytes=self.max_artefact_bytes,
        )
        self.segment, self.opened_on = segment, now.date().isoformat()
        self.ledger.append("segment_start", {"segment": segment.name, "previous_head": head})
        self.records_total += 1

    def append(self, kind: str, fields: Mapping[str, Any]) -> None:
        if self.ledger is None:
            raise RuntimeError("the segmented ledger is not open")
        if not self._batched:
            self.roll_if_due()
        assert self.ledger is not None
        self.ledger.append(kind, fields)
        self.records_total += 1
        self.counts[kind] = self.counts.get(kind, 0) + 1

    @contextmanager
    def batch(self) -> Iterator[None]:
        """The records appended inside in one transaction of the open segment (Ledger.batch), the
        segment rolled if due before it rather than looked at (a stat) for every record."""
        if self.ledger is None:
            raise RuntimeError("the segmented ledger is not open")
        if self._batched:
            yield
            return
        self.roll_if_due()
        assert self.ledger is not None
        total, counts = self.records_total, dict(self.counts)
        self._batched = True
        try:
            with self.ledger.batch():
                yield
        except BaseException:
            self.records_total, self.counts = total, counts
            raise
        finally:
            self._batched = False

    def store_artefact(self, data: bytes) -> str:
        assert self.ledger is not None
        return self.ledger.store_artefact(data)

    def roll_if_due(self) -> None:
        """Seal the open segment and open the next, chained to its head, at UTC midnight or past
        max_bytes (the monitor calls this on a timer too, so a quiet day still gets its segment)."""
        if self.segment is None:
            return
        day_over = self.clock().date().isoformat() != self.opened_on
        if day_over or (self.segment / LEDGER_FILE).stat().st_size > self.max_bytes:
            self.close()
            self._open()

    def close(self, *, interrupted: bool = False) -> None:
        """Seal the open segment (a clean stop, or a roll)."""
        if self.ledger is None or self.segment is None:
            return
        self.ledger.append("segment_end", {"segment": self.segment.name, "counts": dict(self.ledger.counts)})
        self.records_total += 1
        self.ledger.close()
        self.ledger = None
        self._seal(self.segment, recovered=False, interrupted=interrupted)
        self.segment = None

    def _seal(self, segment: Path, *, recovered: bool, interrupted: bool = False) -> None:
        doc = read_json(segment / SEGMENT_FILE) | {
            "closed_at": self.clock().isoformat(),
            "recovered": recovered,
        }
        write_json(segment / SEGMENT_FILE, doc)
        if (segment / LEDGER_FILE).is_file():
            open_ledger(segment).close()  # folds a killed writer's WAL into the one file
        write_json(segment / STATE_FILE, self._snapshot(), compact=True)
        meta = {
            "run_id": f"{self.monitor_id}/{segment.name}",
            "interrupted": recovered or interrupted,
            "recovered": recovered,
        }
        seal(segment, self.key, meta)


@dataclass
class ChainCheck:
    segments: list[tuple[str, Verification]]
    links: list[str]  # problems between segments

    @property
    def ok(self) -> bool:
        return not self.links and all(v.ok for _, v in self.segments)

    @property
    def records(self) -> int:
        return sum(v.records for _, v in self.segments)


def verify_segment(segment: Path) -> Verification:
    try:
        start = segment_start(segment)
    except (OSError, ValueError) as exc:
        result = Verification()
        result.problems.append(f"{SEGMENT_FILE}: unreadable ({exc})")
        return result
    return verify(segment, start)


def verify_chain(state_dir: Path) -> ChainCheck:
    """Every segment on its own, and each one's first record following the one before's head."""
    check = ChainCheck([], [])
    previous_head, previous_name = GENESIS, None
    for index, segment in enumerate(segment_dirs(state_dir), start=1):
        result = verify_segment(segment)
        check.segments.append((segment.name, result))
        try:
            doc = read_json(segment / SEGMENT_FILE)
        except (OSError, ValueError):
            continue
        if doc.get("index") != index:
            check.links.append(f"{segment.name}: segment {index} expected here (a segment is missing?)")
        if doc.get("previous_head") != previous_head or doc.get("previous") != previous_name:
            after = previous_name or "the start"
            check.links.append(f"{segment.name}: does not follow {after} (chain broken)")
        previous_head, previous_name = result.chain_head, segment.name
    if not check.segments:
        check.links.append(f"{state_dir}: no segments here")
    return check
