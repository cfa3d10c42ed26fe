"""What the MQTT collector returns: messages as received, per-topic summaries of a window, the
observation itself and the answer to a login."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

PAYLOAD_LIMIT = 512  # bytes of a payload kept per stored message (status and heartbeat JSON fit)


class Cut(bytes):
    """The first PAYLOAD_LIMIT bytes of a payload larger than the run's bound
    (`limits.max_reply_bytes`), and its whole size: the rest is dropped as the message arrives,
    before it is queued, so a device publishing huge payloads costs its own finding, not memory."""

    size: int

    @classmethod
    def of(cls, payload: bytes) -> Cut:
        cut = cls(payload[:PAYLOAD_LIMIT])
        cut.size = len(payload)
        return cut


def payload_size(payload: bytes) -> int:
    """A payload's whole length, also when it was cut on arrival."""
    return payload.size if isinstance(payload, Cut) else len(payload)


@dataclass(frozen=True)
class Received:
    """One message as it arrived: the collector's receive time and the first PAYLOAD_LIMIT bytes."""

    at: datetime
    payload: bytes
    size: int  # the whole payload's length
    qos: int
    retain: bool  # a stored message the broker replayed on subscribe, not one sent during the window
    oversize: bool = False  # larger than the run's bound: cut on arrival (see Cut)

    @property
    def truncated(self) -> bool:
        return self.size > len(self.payload)


@dataclass(frozen=True)
class TopicSummary:
    """Everything kept of one topic over a window."""

    topic: str
    messages: int  # every delivery, retained replays included
    live: int  # published during the window
    retained: Received | None  # the broker's stored message, as replayed on subscribe
    first_live: Received | None
    last_live: Received | None
    max_live_gap_s: float | None  # the longest silence between two consecutive live messages
    oversize: int = 0  # messages larger than the run's bound (limits.max_reply_bytes), cut on arrival
    oversize_bytes: int = 0  # the largest of them, whole

    @property
    def latest(self) -> Received | None:
        """The topic's last word: the newest live message, else the retained one."""
        return self.last_live or self.retained


@dataclass(frozen=True)
class Observation:
    """What a subscription saw in its window, with the exchange that carries it."""

    address: str
    filters: tuple[str, ...]
    started_at: datetime  # when the broker had acknowledged the subscription
    ended_at: datetime
    topics: Mapping[str, TopicSummary]
    messages: int
    untracked: int  # messages on topics beyond MAX_TOPICS: counted, not kept
    exchange_id: str
    max_payload_bytes: int | None = None  # the bound past which a payload was cut on arrival
    # spans without a subscription (the broker restarted mid-window): silence there is not the devices'
    gaps: tuple[tuple[datetime, datetime], ...] = ()

    @property
    def window_s(self) -> float:
        return (self.ended_at - self.started_at).total_seconds()

    def topic(self, name: str) -> TopicSummary | None:
        return self.topics.get(name)


@dataclass(frozen=True)
class LoginResult:
    """The broker's answer to one login attempt."""

    accepted: bool
    reason_code: int  # CONNACK reason code, MQTT 5 numbering (0 = accepted)
    reason: str
    exchange_id: str
