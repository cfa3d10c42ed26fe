"""The media service (Profile S): video sources, media profiles and RTSP stream URIs.

A camera has one channel, an NVR one per camera it records; every channel has a main and a sub
stream profile, with Hikvision-style RTSP paths (`/Streaming/Channels/101`).  The RTSP port is only
advertised: the simulator does not stream video.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simulator.onvif import soap
from simulator.onvif.service import Call, Service, lookup

RTSP_PORT = 554
VIDEO_ANALYTICS = "VideoAnalyticsConfig_1"
FIELD_RULE = "FieldDetector1"
LINE_RULE = "LineDetector1"


@dataclass(frozen=True)
class Channel:
    """One video input (a camera's sensor, or an NVR channel fed by a camera)."""

    number: int
    name: str
    analytics: bool

    @property
    def source_token(self) -> str:
        return f"VideoSource_{self.number}"

    @property
    def source_config_token(self) -> str:
        return f"VideoSourceConfig_{self.number}"


@dataclass(frozen=True)
class _Stream:
    channel: Channel
    stream: int  # 1 main, 2 sub
    width: int
    height: int
    fps: int
    kbps: int

    @property
    def token(self) -> str:
        return f"Profile_{self.channel.number}{self.stream:02d}"


class MediaService:
    """trt: profiles built from the device's channels."""

    def __init__(self, host: str, channels: list[Channel]) -> None:
        self.host = host
        self.channels = channels
        self.streams = {
            s.token: s
            for c in channels
            for s in (_Stream(c, 1, 2560, 1440, 25, 4096), _Stream(c, 2, 640, 360, 25, 512))
        }

    def service(self) -> Service:
        return Service(
            path="/onvif/media_service",
            namespace=soap.TRT,
            bindings=("media",),
            handlers={
                "GetServiceCapabilities": self.get_service_capabilities,
                "GetVideoSources": self.get_video_sources,
                "GetProfiles": self.get_profiles,
                "GetProfile": self.get_profile,
                "GetStreamUri": self.get_stream_uri,
            },
            capabilities=self.capabilities,
        )

    def capabilities(self) -> dict[str, Any]:
        return {
            "ProfileCapabilities": {"MaximumNumberOfProfiles": len(self.streams)},
            "StreamingCapabilities": {"RTPMulticast": False, "RTP_TCP": True, "RTP_RTSP_TCP": True},
            "SnapshotUri": False,
            "Rotation": False,
        }

    async def get_service_capabilities(self, call: Call) -> dict[str, Any]:
        return {"Capabilities": self.capabilities()}

    async def get_video_sources(self, call: Call) -> dict[str, Any]:
        return {
            "VideoSources": [
                {"token": c.source_token, "Framerate": 25.0, "Resolution": {"Width": 2560, "Height": 1440}}
                for c in self.channels
            ]
        }

    async def get_profiles(self, call: Call) -> dict[str, Any]:
        return {"Profiles": [self._profile(s) for s in self.streams.values()]}

    async def get_profile(self, call: Call) -> dict[str, Any]:
        return {"Profile": self._profile(lookup(self.streams, call.params.ProfileToken, "NoProfile"))}

    async def get_stream_uri(self, call: Call) -> dict[str, Any]:
        s = lookup(self.streams, call.params.ProfileToken, "NoProfile")
        uri = f"rtsp://{self.host}:{RTSP_PORT}/Streaming/Channels/{s.channel.number}{s.stream:02d}"
        return {
            "MediaUri": {
                "Uri": uri,
                "InvalidAfterConnect": False,
                "InvalidAfterReboot": False,
                "Timeout": "PT0S",
            }
        }

    def _profile(self, s: _Stream) -> dict[str, Any]:
        c = s.channel
        profile: dict[str, Any] = {
            "token": s.token,
            "fixed": True,
            "Name": f"{'main' if s.stream == 1 else 'sub'}Stream {c.name}",
            "VideoSourceConfiguration": {
                "token": c.source_config_token,
                "Name": f"VideoSourceConfig {c.number}",
                "UseCount": 2,
                "SourceToken": c.source_token,
                "Bounds": {"x": 0, "y": 0, "width": 2560, "height": 1440},
            },
            "VideoEncoderConfiguration": {
                "token": f"VideoEncoder_{c.number}{s.stream:02d}",
                "Name": f"VideoEncoder {c.number}{s.stream:02d}",
                "UseCount": 1,
                "Encoding": "H264",
                "Resolution": {"Width": s.width, "Height": s.height},
                "Quality": 3.0,
                "RateControl": {"FrameRateLimit": s.fps, "EncodingInterval": 1, "BitrateLimit": s.kbps},
                "H264": {"GovLength": 50, "H264Profile": "Main"},
                "Multicast": {
                    "Address": {"Type": "IPv4", "IPv4Address": "0.0.0.0"},
                    "Port": 8600,
                    "TTL": 128,
                    "AutoStart": False,
                },
                "SessionTimeout": "PT5S",
            },
        }
        if c.analytics:
            profile["VideoAnalyticsConfiguration"] = {
                "token": VIDEO_ANALYTICS,
                "Name": "VideoAnalyticsConfig",
                "UseCount": len(self.streams),
                "AnalyticsEngineConfiguration": {},
                "RuleEngineConfiguration": {
                    "Rule": [
                        {"Name": FIELD_RULE, "Type": "tt:FieldDetector", "Parameters": {"SimpleItem": []}},
                        {"Name": LINE_RULE, "Type": "tt:LineDetector", "Parameters": {"SimpleItem": []}},
                    ]
                },
            }
        return profile
