"""What the monitor says while it runs: one screen kept up to date on a terminal, one JSON line per
event otherwise (for journald and log shippers)."""

from __future__ import annotations

import json
import sys
from collections import deque
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

from probes.finding import Finding
from zhian.monitor.board import UNKNOWN

if TYPE_CHECKING:
    from zhian.monitor.service import Monitor

RECENT = 8  # changes shown on the terminal screen


class Console:
    def __init__(self, monitor: Monitor, out: TextIO = sys.stderr) -> None:
        self.monitor, self.out = monitor, out
        self.screen = out.isatty()
        self.recent: deque[str] = deque(maxlen=RECENT)
        self.first_passes = 0  # first judgements that passed since the last tick

    def _line(self, event: str, **fields: Any) -> None:
        row = {"at": datetime.now(UTC).isoformat(timespec="milliseconds"), "event": event} | fields
        if self.screen:
            self.recent.append(
                f"{row['at'][11:19]} {event} " + " ".join(f"{k}={v}" for k, v in fields.items())
            )
            return
        self.out.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        self.out.flush()

    def started(self, scheduled: int, tracked: int, listen: tuple[str, int] | None) -> None:
        where = f"http://{listen[0]}:{listen[1]}/metrics" if listen else None
        segment = self.monitor.ledger.segment
        self._line("started", scheduled_jobs=scheduled, tracked_devices=tracked, metrics=where,
                   segment=segment.name if segment else None)  # fmt: skip
        for problem in self.monitor.inventory_problems:
            self._line("inventory", problem=problem)

    def change(self, finding: Finding, previous: str) -> None:
        """A line per change; a first judgement that passes is only counted, and the count said once a
        tick (a site's start is not 50,000 lines written on the main loop, each flushed)."""
        if previous == UNKNOWN and finding.status == "pass":
            self.first_passes += 1
            return
        self._line("change", probe=finding.probe, device=finding.device, status=finding.status,
                   previous=previous, reason=finding.reason)  # fmt: skip

    def first_judgements(self) -> None:
        if self.first_passes:
            passed, self.first_passes = self.first_passes, 0
            tracker = self.monitor.tracker
            self._line("first_judgements", passed=passed, devices_judged=tracker.judged,
                       devices_tracked=len(tracker.devices))  # fmt: skip

    def note(self, text: str) -> None:
        self._line("note", text=text)

    def stopped(self, records: int, phases_s: dict[str, float]) -> None:
        self.screen = False
        self.first_judgements()
        self._line("stopped", records=records, seconds=phases_s)

    def tick(self) -> None:
        """Say how many first judgements passed; redraw the one screen (a terminal only)."""
        m = self.monitor
        self.first_judgements()
        if not self.screen:
            return
        devices = list(m.tracker.devices.values())
        up = sum(1 for d in devices if d.up)
        down = [d.target.id for d in devices if d.up is False]
        others = m.devices_up()
        down += [d for d, ok in others.items() if not ok]
        failing = sorted(i for i, s in m.board.indicators.items() if s.status == "fail")
        lines = [
            f"zhian monitor {m.monitor_id}  segment {m.ledger.segment.name if m.ledger.segment else '-'}"
            f"  records {m.ledger.records_total}",
            f"devices up {up + sum(others.values())}, down {len(down)}: {', '.join(down[:10])}"
            + (" ..." if len(down) > 10 else ""),
            f"brokers: {', '.join(f'{b} {s}' for b, s in sorted(m.live.brokers.items())) or '-'}",
            f"indicators failing ({len(failing)}): {', '.join(failing[:12])}"
            + (" ..." if len(failing) > 12 else ""),
            "last changes:",
            *self.recent,
        ]
        self.out.write("\x1b[H\x1b[2J" + "\n".join(lines) + "\n")
        self.out.flush()
