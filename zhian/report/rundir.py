"""What the report reads from a run directory, each file checked with an error that names it.

Only the fields the report uses are required, and with defaults wherever a run written by an
older or interrupted zhian may lack one: a report must be possible years later (4.9). The ledger
is read only through `LedgerReader`, never changed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mapping.catalog import LEVELS
from zhian.errors import UsageError
from zhian.evidence.chain import LedgerError
from zhian.evidence.reader import LedgerReader
from zhian.evidence.storage import LEDGER_FILE

RUN_FILE, FINDINGS_FILE, VERDICTS_FILE, SCORE_FILE = (
    "run.json",
    "findings.jsonl",
    "verdicts.yaml",
    "score.json",
)
EVALUATOR_DIR = "evaluator"  # the evaluator's files a report sealed into the run keeps


class _Lenient(BaseModel):
    """Input shapes: extra fields are the writer's business, missing required ones are errors."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class CommunityIn(_Lenient):
    name: str
    operator: str = ""
    address: str = ""
    target_level: str = "C"
    timezone: str = "Asia/Shanghai"


class DeviceIn(_Lenient):
    id: str
    kind: str
    protocol: str = ""
    address: str = ""
    area: str = ""
    tls: bool = False
    type: str | None = None


class SignerIn(_Lenient):
    algorithm: str
    public_key: str
    fingerprint: str


class SampleIn(_Lenient):
    population: int = 0
    size: int = 0
    ratio: float = 0.0
    rule: str = ""
    items: list[str] = Field(default_factory=list)


class SamplingIn(_Lenient):
    mode: str | None = None
    seed: int | None = None
    groups: dict[str, SampleIn] = Field(default_factory=dict)


class RunIn(_Lenient):
    run_id: str
    tool: str = ""
    community: CommunityIn
    config_sha256: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    interrupted: bool = False
    recovered: bool = False
    recovery_reason: str | None = None
    sampling: SamplingIn = Field(default_factory=SamplingIn)
    exchanges: int = 0
    levels: list[str] = Field(default_factory=lambda: list(LEVELS))
    threshold: Literal["gt", "ge"] = "gt"
    inventory: list[DeviceIn] = Field(default_factory=list)
    signed_by: SignerIn | None = None


class FindingIn(_Lenient):
    probe: str
    device: str
    status: Literal["pass", "fail", "partial", "error", "not_assessed"]
    reason: str = ""
    detail: str = ""
    facts: dict[str, Any] = Field(default_factory=dict)
    evidence: list[str] = Field(default_factory=list)
    ratio: float | None = None
    started_at: str | None = None
    finished_at: str | None = None
    indicators: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class RunFiles:
    path: Path
    run: RunIn
    findings: tuple[FindingIn, ...]
    score: dict[str, Any]

    @property
    def verdicts(self) -> Path:
        return self.path / VERDICTS_FILE


def _problem(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return f"{'.'.join(map(str, err['loc'])) or 'document'}: {err['msg']}"


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file (is this a run directory written by `zhian run`?)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot be read ({exc})") from None


def _json(path: Path) -> Any:
    try:
        return json.loads(_text(path))
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg})") from None


def read_run(run_dir: Path) -> RunFiles:
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: not a run directory")
    try:
        run = RunIn.model_validate(_json(run_dir / RUN_FILE))
    except ValidationError as exc:
        raise UsageError(f"{run_dir / RUN_FILE}: {_problem(exc)}") from None
    score = _json(run_dir / SCORE_FILE)
    if not isinstance(score, dict):
        raise UsageError(f"{run_dir / SCORE_FILE}: expected a JSON object (zhian.score/1)")
    findings: list[FindingIn] = []
    path = run_dir / FINDINGS_FILE
    for n, line in enumerate(_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            findings.append(FindingIn.model_validate_json(line))
        except ValidationError as exc:
            raise UsageError(f"{path}: line {n}: {_problem(exc)}") from None
    if not (run_dir / VERDICTS_FILE).is_file():
        raise UsageError(f"{run_dir / VERDICTS_FILE}: no such file")
    return RunFiles(run_dir, run, tuple(findings), score)


@contextmanager
def ledger(run_dir: Path) -> Iterator[LedgerReader]:
    try:
        reader = LedgerReader(run_dir)
    except LedgerError as exc:
        raise UsageError(str(exc)) from None
    try:
        yield reader
    except LedgerError as exc:
        raise UsageError(f"{run_dir / LEDGER_FILE}: {exc}") from None
    finally:
        reader.close()
