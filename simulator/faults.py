"""The closed set of faults a community file may inject, with their parameters.

Each fault is a small pydantic model so that a typo in a community file is an error that names
the device and the key, never a silently healthy device.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class FaultBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetentionShort(FaultBase):
    """Recorded history reaches back only this many days (shorter than the site needs)."""

    type: Literal["retention_short"] = "retention_short"
    days: float = Field(gt=0)


class RecordingGap(FaultBase):
    """No data was recorded in a span: [days_ago, days_ago - hours/24]."""

    type: Literal["recording_gap"] = "recording_gap"
    days_ago: float = Field(gt=0)
    hours: float = Field(gt=0)


class DeletedSpan(FaultBase):
    """Data once recorded was deleted in a span (shows in RecordingHistory events)."""

    type: Literal["deleted_span"] = "deleted_span"
    days_ago: float = Field(gt=0)
    hours: float = Field(gt=0)


class Offline(FaultBase):
    """The device does not listen at all (connection refused)."""

    type: Literal["offline"] = "offline"


class Hung(FaultBase):
    """The device accepts connections and never answers."""

    type: Literal["hung"] = "hung"


class Slow(FaultBase):
    """The device drips its reply a few bytes at a time."""

    type: Literal["slow"] = "slow"
    bytes_per_second: int = Field(default=20, gt=0)


class MalformedXml(FaultBase):
    """Replies are cut mid-document (invalid XML)."""

    type: Literal["malformed_xml"] = "malformed_xml"


class SoapFault(FaultBase):
    """The named operations (all when empty) answer with a SOAP fault: an internal error, or
    ActionNotSupported as a device lacking the operation answers."""

    type: Literal["soap_fault"] = "soap_fault"
    operations: list[str] = Field(default_factory=list)
    not_supported: bool = False


class VideoLoss(FaultBase):
    """The camera's video signal is lost: SignalLoss event, platform alert."""

    type: Literal["video_loss"] = "video_loss"


class DoorNoUnlockOnFire(FaultBase):
    """The door ignores the fire linkage (stays locked)."""

    type: Literal["door_no_unlock_on_fire"] = "door_no_unlock_on_fire"


class LinkageSlow(FaultBase):
    """This device's linked action happens only after delay_s seconds."""

    type: Literal["linkage_slow"] = "linkage_slow"
    delay_s: float = Field(gt=0)


class HeartbeatMissing(FaultBase):
    """Heartbeats stop while the retained status still says online."""

    type: Literal["heartbeat_missing"] = "heartbeat_missing"


class PlatformNoOfflineAlert(FaultBase):
    """The platform never raises the device-offline alert."""

    type: Literal["platform_no_offline_alert"] = "platform_no_offline_alert"


class WeakCredentials(FaultBase):
    """The device accepts a default or weak account (besides its own)."""

    type: Literal["weak_credentials"] = "weak_credentials"
    username: str = "admin"
    password: str = "12345"


class NoLockout(FaultBase):
    """Failed logins are never locked out nor slowed down."""

    type: Literal["no_lockout"] = "no_lockout"


class ClockSkew(FaultBase):
    """The device clock is off by this many seconds."""

    type: Literal["clock_skew"] = "clock_skew"
    seconds: float


class SubscriptionDiesSilently(FaultBase):
    """ONVIF pull points go deaf after_s seconds after their creation: PullMessages and Renew still
    answer, but no event (nor a synchronization point's states) reaches them any more, as on
    devices that lose their subscriptions' notification producer without telling."""

    type: Literal["subscription_dies_silently"] = "subscription_dies_silently"
    after_s: float = Field(default=5.0, gt=0)


class PlainHttp(FaultBase):
    """The device serves plain HTTP although the site configures TLS."""

    type: Literal["plain_http"] = "plain_http"


Fault = Annotated[
    RetentionShort
    | RecordingGap
    | DeletedSpan
    | Offline
    | Hung
    | Slow
    | MalformedXml
    | SoapFault
    | VideoLoss
    | DoorNoUnlockOnFire
    | LinkageSlow
    | HeartbeatMissing
    | PlatformNoOfflineAlert
    | WeakCredentials
    | NoLockout
    | ClockSkew
    | SubscriptionDiesSilently
    | PlainHttp,
    Field(discriminator="type"),
]
