"""The simulated ONVIF devices: camera, NVR and door controller (SimDevice implementations).

Site-bus actions each device takes (params in brackets):

* camera: "alarm" [reason] -> tns1:Device/Trigger/DigitalInput LogicalState=true (a linkage);
  "intrusion" -> tns1:RuleEngine/FieldDetector/ObjectsInside IsInside=true, a LineDetector/Crossed
  pulse and SiteEvent("intrusion") (only with analytics on); "clear" -> both back to false, as
  they also fall back by themselves ALARM_HOLD_S after the last alarm (the alarm hold time).
* door: "unlock" / "lock" [reason] (linkages; door_no_unlock_on_fire ignores reason="fire");
  "force_open"; "hold_open" [after_s, default door.held_open_alarm_s, 0 = at once]; "close";
  "swipe" [credential, holder, granted, reason] -> AccessGranted / Denied event, a grant opens
  the door momentarily.

Every ONVIF device also takes "forget_subscriptions" (a reboot: its pull points are gone, their
addresses answer ResourceUnknownFault) and "freeze" (from now on every request is read and never
answered: a device hung mid-service, as the hung fault is from the start); one that records (an NVR,
a camera recording on its own) also "purge" [days] (its video older than that gone: a disk wiped or
overwritten early). linkage_slow delays the linkage actions by delay_s; the command returns at once.
"""

from __future__ import annotations

import asyncio
from typing import Any

from simulator import faults
from simulator.model import CameraParams, DeviceSpec, DoorParams, NvrParams
from simulator.onvif.device import identity
from simulator.onvif.doorcontrol import DEFAULT_ACCESS_S, AccessControlService, Door, DoorControlService
from simulator.onvif.events import (
    ACCESS_DENIED,
    ACCESS_GRANTED,
    DIGITAL_INPUT,
    DOOR_ALARM,
    DOOR_MODE,
    DOOR_PHYSICAL,
    LINE_CROSSED,
    OBJECTS_INSIDE,
    RECORDING_STATE,
    SCENE_CHANGE,
    SIGNAL_LOSS,
    STORAGE_FAILURE,
    TRACK_STATE,
    EventServices,
    Topic,
    xml_bool,
)
from simulator.onvif.media import FIELD_RULE, LINE_RULE, VIDEO_ANALYTICS, Channel, MediaService
from simulator.onvif.recording import RecordedSource, damage
from simulator.onvif.render import Catalog
from simulator.onvif.server import CommandAction, OnvifDevice
from simulator.onvif.service import Service
from simulator.runtime import DeviceContext

INPUT = {"InputToken": "DigitalInput_1"}
ALARM_HOLD_S = 5.0


class OnvifCamera(OnvifDevice):
    """A camera: Profile S media and events, Profile G edge recording unless an NVR records it."""

    linked = frozenset({"alarm"})

    def __init__(self, ctx: DeviceContext) -> None:
        self.params = ctx.spec.camera or CameraParams()
        self.channel = Channel(1, ctx.spec.id, self.params.analytics)
        super().__init__(ctx)
        lost = ctx.spec.fault(faults.VideoLoss) is not None
        vs = {"VideoSourceToken": self.channel.source_token}
        self.broker.set_property(SIGNAL_LOSS, vs, {"State": xml_bool(lost)})
        self.broker.set_property(SCENE_CHANGE, vs, {"State": "false"})
        self.broker.set_property(DIGITAL_INPUT, INPUT, {"LogicalState": "false"})
        if self.params.analytics:
            self.broker.set_property(OBJECTS_INSIDE, self._rule(FIELD_RULE), {"IsInside": "false"})

    @property
    def edge_recording(self) -> bool:
        return self.params.recorded_by is None

    def topics(self) -> list[Topic]:
        topics = [SIGNAL_LOSS, SCENE_CHANGE, DIGITAL_INPUT]
        if self.params.analytics:
            topics += [OBJECTS_INSIDE, LINE_CROSSED]
        if self.edge_recording:
            topics += [RECORDING_STATE, TRACK_STATE]
        return topics

    def build(self, cat: Catalog, events: EventServices) -> list[Service]:
        p = self.params
        profiles = ("Streaming", "G") if self.edge_recording else ("Streaming",)
        ident = identity(self.ctx, p.manufacturer, p.model, "Network_Video_Transmitter", profiles)
        services = [
            self.device_service(cat, ident),
            MediaService(self.ctx.host, [self.channel]).service(),
            events.event_service(),
        ]
        if self.edge_recording:
            source = RecordedSource(
                token=f"REC_{self.ctx.spec.id}",
                source_id=f"{self.base_url()}/onvif/device_service",
                address=f"rtsp://{self.ctx.host}:554/Streaming/Channels/101",
                name=self.ctx.spec.id,
                location=self.ctx.spec.area,
                configured_retention_days=p.configured_retention_days,
                **damage([self.ctx.spec], p.retention_days),
            )
            services += self.recording_services(cat, [source])
        return services

    _release: asyncio.TimerHandle | None = None

    def on_start(self) -> None:
        if self.ctx.spec.fault(faults.VideoLoss) is not None:
            self.site_event("video_loss", {"video_source": self.channel.source_token})

    def actions(self) -> dict[str, CommandAction]:
        return {"alarm": self._alarm, "intrusion": self._intrusion, "clear": self._clear}

    def _rule(self, rule: str) -> dict[str, str]:
        return {
            "VideoSourceConfigurationToken": self.channel.source_config_token,
            "VideoAnalyticsConfigurationToken": VIDEO_ANALYTICS,
            "Rule": rule,
        }

    def _alarm(self, params: dict[str, Any]) -> None:
        self.broker.set_property(DIGITAL_INPUT, INPUT, {"LogicalState": "true"})
        self._hold_alarm()

    def _intrusion(self, params: dict[str, Any]) -> None:
        if not self.params.analytics:
            return  # nothing on this camera can see it
        self.broker.set_property(OBJECTS_INSIDE, self._rule(FIELD_RULE), {"IsInside": "true"})
        self.broker.pulse(LINE_CROSSED, self._rule(LINE_RULE), {"ObjectId": "1"})
        self.site_event("intrusion", {"rule": FIELD_RULE})
        self._hold_alarm()

    def _hold_alarm(self) -> None:
        """Alarm states drop by themselves after the camera's alarm hold time, as real ones do."""
        if self._release is not None:
            self._release.cancel()
        self._release = asyncio.get_running_loop().call_later(ALARM_HOLD_S, self._clear, {})

    def _clear(self, params: dict[str, Any]) -> None:
        self.broker.set_property(DIGITAL_INPUT, INPUT, {"LogicalState": "false"})
        if self.params.analytics:
            self.broker.set_property(OBJECTS_INSIDE, self._rule(FIELD_RULE), {"IsInside": "false"})


class OnvifNvr(OnvifDevice):
    """An NVR: one channel and one Profile G recording per camera whose recorded_by names it."""

    def __init__(self, ctx: DeviceContext) -> None:
        self.params = ctx.spec.nvr or NvrParams()
        self.cameras = [
            d for d in ctx.community.devices if d.camera is not None and d.camera.recorded_by == ctx.spec.id
        ]
        numbers = [c.camera.channel for c in self.cameras if c.camera is not None]
        if len(set(numbers)) != len(numbers):
            numbers = list(range(1, len(self.cameras) + 1))
        self.channels = [Channel(n, c.id, False) for n, c in zip(numbers, self.cameras, strict=True)]
        super().__init__(ctx)
        for channel, camera in zip(self.channels, self.cameras, strict=True):
            lost = camera.fault(faults.VideoLoss) is not None
            self.broker.set_property(
                SIGNAL_LOSS, {"VideoSourceToken": channel.source_token}, {"State": xml_bool(lost)}
            )
        self.broker.set_property(STORAGE_FAILURE, {"Token": "HDD_1"}, {"Failed": "false"})

    def topics(self) -> list[Topic]:
        topics = [SIGNAL_LOSS, STORAGE_FAILURE]
        if self.params.profile_g:
            topics += [RECORDING_STATE, TRACK_STATE]
        return topics

    def build(self, cat: Catalog, events: EventServices) -> list[Service]:
        p = self.params
        profiles = ("Streaming", "G") if p.profile_g else ("Streaming",)
        ident = identity(self.ctx, p.manufacturer, p.model, "Network_Video_Storage", profiles)
        services = [
            self.device_service(cat, ident),
            MediaService(self.ctx.host, self.channels).service(),
            events.event_service(),
        ]
        if p.profile_g:
            sources = [self._source(ch, cam) for ch, cam in zip(self.channels, self.cameras, strict=True)]
            services += self.recording_services(cat, sources)
        return services

    def _source(self, channel: Channel, camera: DeviceSpec) -> RecordedSource:
        ep = self.ctx.directory.get(camera.id)
        source_id = ep.url() if ep is not None else f"urn:zhian-sim:device:{camera.id}"
        address = f"rtsp://{ep.host}:554/Streaming/Channels/101" if ep is not None else source_id
        return RecordedSource(
            token=f"REC_{camera.id}",
            source_id=source_id,
            address=address,
            name=camera.id,
            location=camera.area,
            configured_retention_days=self.params.configured_retention_days,
            source_token=f"Profile_{channel.number}01",
            **damage([self.ctx.spec, camera], self.params.retention_days),
        )


class OnvifDoorController(OnvifDevice):
    """A Profile C door controller with one door and its reader."""

    linked = frozenset({"unlock", "lock"})

    def __init__(self, ctx: DeviceContext) -> None:
        self.params = ctx.spec.door or DoorParams()
        super().__init__(ctx)
        self.door = Door(ctx.spec.id, self.broker, self.site_event)

    def topics(self) -> list[Topic]:
        return [DOOR_MODE, DOOR_PHYSICAL, DOOR_ALARM, ACCESS_GRANTED, ACCESS_DENIED]

    def build(self, cat: Catalog, events: EventServices) -> list[Service]:
        p = self.params
        ident = identity(self.ctx, p.manufacturer, p.model, "access_control", ("C",))
        area = self.ctx.community.area(self.ctx.spec.area)
        return [
            self.device_service(cat, ident),
            events.event_service(),
            DoorControlService(self.door, self.ctx.now).service(),
            AccessControlService(self.door, area.id, area.name_zh).service(),
        ]

    def actions(self) -> dict[str, CommandAction]:
        return {
            "unlock": self._unlock,
            "lock": lambda params: self.door.set_mode("Locked", params.get("reason")),
            "force_open": lambda params: self.door.force_open(),
            "hold_open": lambda params: self.door.hold_open(
                float(params.get("after_s", self.params.held_open_alarm_s))
            ),
            "close": lambda params: self.door.close(),
            "swipe": self._swipe,
        }

    def on_stop(self) -> None:
        self.door.cancel_timers()

    def _unlock(self, params: dict[str, Any]) -> None:
        reason = params.get("reason")
        if reason == "fire" and self.ctx.spec.fault(faults.DoorNoUnlockOnFire) is not None:
            return  # the fire linkage is not wired to this door
        self.door.set_mode("Unlocked", reason)

    def _swipe(self, params: dict[str, Any]) -> None:
        granted = bool(params.get("granted", True))
        token = str(params.get("credential", "Credential_1"))
        self.door.credential(
            token, str(params.get("holder", "")), granted, str(params.get("reason", "Unauthorized"))
        )
        if granted:
            self.door.access(DEFAULT_ACCESS_S)
