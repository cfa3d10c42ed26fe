"""A Hikvision access controller / face terminal (DS-K1T671M-like) over ISAPI.

Served: deviceInfo, time, illegalLoginLock, userCheck and alertStream (common.py), plus
PUT /ISAPI/AccessControl/RemoteControl/door/<n> (open | close | alwaysOpen | alwaysClose, XML or
`?format=json`), GET /ISAPI/AccessControl/Door/param/<n>, GET /ISAPI/AccessControl/AcsWorkStatus
?format=json and POST /ISAPI/AccessControl/AcsEvent?format=json (the event log search).

Event codes are those of the HCNetSDK access-control headers, cross-checked in several SDK copies:
major 0x1 alarm, 0x2 exception, 0x3 operation, 0x5 event; operation minors 0x400 remote open,
0x401 remote close, 0x402 remote always-open, 0x403 remote always-close; event minors 0x13/0x14
always-open begin/end, 0x15/0x16 lock open/close, 0x19/0x1a door open/close normal, 0x1b door open
abnormal (forced), 0x1c door open timeout (held open), 0x1f/0x20 always-close begin/end, 0x4b face
verify pass. A search page holds at most 30 records whatever maxResults asks (as devices do);
responseStatusStrg is OK, MORE or "NO MATCH".

Uncertain, from the AC developer guide as remembered rather than a capture: the AcsWorkStatus codes
(doorLockStatus 0 locked / 1 unlocked; doorStatus 2 remain open, 3 remain closed, 4 ordinary;
magneticStatus 0 closed / 1 open) and the DoorParam field set. How real firmware logs a fire-alarm
release is not known; it is logged here as always-open begin plus lock open.

Bus (the site's hidden wiring): "unlock" / "lock" (params: reason; linkage_slow delays them and
door_no_unlock_on_fire ignores an unlock whose reason is "fire"), "force_open", "hold_open" (the
held-open alarm follows after door.held_open_alarm_s) and "close". Each change is logged, pushed on
the alert stream and published as door_forced / door_held / door_state SiteEvents.
"""

from __future__ import annotations

import asyncio
import json
import random
import xml.etree.ElementTree as ET
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from simulator.bus import EventType, SiteEvent
from simulator.faults import DoorNoUnlockOnFire, LinkageSlow
from simulator.isapi.common import (
    USER_KEY,
    IsapiDevice,
    bad_xml,
    el,
    find_text,
    local_iso,
    parse_time,
    response_status,
    xml_response,
)
from simulator.model import DoorParams
from simulator.runtime import DeviceContext

MAJOR_OPERATION = 0x3
MAJOR_EVENT = 0x5
MINOR_REMOTE_OPEN_DOOR = 0x400
MINOR_REMOTE_CLOSE_DOOR = 0x401
MINOR_REMOTE_ALWAYS_OPEN = 0x402
MINOR_REMOTE_ALWAYS_CLOSE = 0x403
MINOR_ALWAYS_OPEN_BEGIN = 0x13
MINOR_ALWAYS_OPEN_END = 0x14
MINOR_LOCK_OPEN = 0x15
MINOR_LOCK_CLOSE = 0x16
MINOR_DOOR_OPEN_NORMAL = 0x19
MINOR_DOOR_CLOSE_NORMAL = 0x1A
MINOR_DOOR_OPEN_ABNORMAL = 0x1B
MINOR_DOOR_OPEN_TIMEOUT = 0x1C
MINOR_ALWAYS_CLOSE_BEGIN = 0x1F
MINOR_ALWAYS_CLOSE_END = 0x20
MINOR_FACE_VERIFY_PASS = 0x4B

PAGE_CAP = 30
DOORS = 1  # a single-door terminal


@dataclass(frozen=True)
class AcsRecord:
    major: int
    minor: int
    time: datetime
    serial: int
    extra: dict[str, Any] = field(default_factory=dict)

    def info(self) -> dict[str, Any]:
        return {
            "major": self.major,
            "minor": self.minor,
            "time": local_iso(self.time),
            "doorNo": 1,
            "serialNo": self.serial,
            "currentVerifyMode": self.extra.get("currentVerifyMode", "invalid"),
            **{k: v for k, v in self.extra.items() if k != "currentVerifyMode"},
        }


class IsapiDoorController(IsapiDevice):
    device_type = "ACS"
    open_duration_s = 5.0  # how long a remote "open" keeps the lock released

    def __init__(self, ctx: DeviceContext) -> None:
        self.params = ctx.spec.door or DoorParams()
        super().__init__(ctx, self.params.model)
        self.mode = "normal"  # normal | alwaysOpen | alwaysClose
        self.unlocked = False
        self.physical_open = False
        self.events: list[AcsRecord] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._held_timer: asyncio.Task[None] | None = None
        self._relock: asyncio.Task[None] | None = None
        self._seed_history()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.put(r"/ISAPI/AccessControl/RemoteControl/door/{n:\d+}", self._remote_control),
            web.get(r"/ISAPI/AccessControl/Door/param/{n:\d+}", self._door_param),
            web.get("/ISAPI/AccessControl/AcsWorkStatus", self._work_status),
            web.post("/ISAPI/AccessControl/AcsEvent", self._acs_event),
        ]

    async def start(self) -> None:
        self.ctx.bus.register(self.ctx.spec.id, self._command)
        await super().start()

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await super().stop()

    # -- history and event recording ---------------------------------------------------------

    def _seed_history(self) -> None:
        """Residents passing by face over the last three days, so the log has a past to page through."""
        rng = random.Random(f"{self.ctx.community.seed}:{self.ctx.spec.id}")
        now = self.ctx.now()
        passes = sorted(now - timedelta(seconds=rng.uniform(600, 3 * 86400)) for _ in range(20))
        rows: list[tuple[datetime, int, dict[str, Any]]] = []
        for t in passes:
            person = rng.randrange(1001, 1400)
            who = {"employeeNoString": str(person), "name": f"住户{person}", "cardReaderNo": 1}
            rows.append((t, MINOR_FACE_VERIFY_PASS, {**who, "currentVerifyMode": "face"}))
            rows.append((t + timedelta(seconds=2), MINOR_DOOR_OPEN_NORMAL, {}))
            rows.append((t + timedelta(seconds=8), MINOR_DOOR_CLOSE_NORMAL, {}))
        for i, (t, minor, extra) in enumerate(sorted(rows, key=lambda r: r[0]), start=1):
            self.events.append(AcsRecord(MAJOR_EVENT, minor, t, i, extra))

    def _record(self, major: int, minor: int, **extra: Any) -> AcsRecord:
        record = AcsRecord(major, minor, self.ctx.now(), len(self.events) + 1, extra)
        self.events.append(record)
        body = {
            **self.stream_base(),
            "dateTime": local_iso(record.time),
            "activePostCount": 1,
            "eventType": "AccessControllerEvent",
            "eventState": "active",
            "eventDescription": "Access Controller Event",
            "AccessControllerEvent": {
                "deviceName": self.ctx.spec.id,
                "majorEventType": major,
                "subEventType": minor,
                "doorNo": 1,
                "serialNo": record.serial,
                "currentVerifyMode": "invalid",
                **extra,
            },
        }
        part = json.dumps(body, ensure_ascii=False).encode()
        self.alerts.publish(('application/json; charset="UTF-8"', part))
        return record

    def _publish(self, kind: EventType, **data: Any) -> None:
        self.ctx.bus.publish(SiteEvent(kind, self.ctx.spec.id, self.ctx.spec.area, {"door_no": 1, **data}))

    def _state_changed(self, reason: str) -> None:
        self._publish(
            "door_state",
            mode=self.mode,
            locked=not self.unlocked,
            physical="open" if self.physical_open else "closed",
            reason=reason,
        )

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- door behaviour ----------------------------------------------------------------------

    def _set_mode(self, mode: str) -> None:
        if mode == self.mode:
            return
        if self.mode == "alwaysOpen":
            self._record(MAJOR_EVENT, MINOR_ALWAYS_OPEN_END)
        elif self.mode == "alwaysClose":
            self._record(MAJOR_EVENT, MINOR_ALWAYS_CLOSE_END)
        if mode == "alwaysOpen":
            self._record(MAJOR_EVENT, MINOR_ALWAYS_OPEN_BEGIN)
        elif mode == "alwaysClose":
            self._record(MAJOR_EVENT, MINOR_ALWAYS_CLOSE_BEGIN)
        self.mode = mode

    def _set_lock(self, unlocked: bool) -> None:
        if unlocked != self.unlocked:
            self._record(MAJOR_EVENT, MINOR_LOCK_OPEN if unlocked else MINOR_LOCK_CLOSE)
            self.unlocked = unlocked

    def _cancel_relock(self) -> None:
        if self._relock is not None:
            self._relock.cancel()
            self._relock = None

    def release(self, reason: str) -> None:
        """Held open (fire linkage or always-open): stays unlocked until locked again."""
        self._cancel_relock()
        self._set_mode("alwaysOpen")
        self._set_lock(True)
        self._state_changed(reason)

    def secure(self, reason: str) -> None:
        self._cancel_relock()
        self._set_mode("normal")
        self._set_lock(False)
        self._state_changed(reason)

    def physical(self, opened: bool, *, forced: bool = False) -> None:
        if opened == self.physical_open:
            return
        self.physical_open = opened
        if opened:
            self._record(MAJOR_EVENT, MINOR_DOOR_OPEN_ABNORMAL if forced else MINOR_DOOR_OPEN_NORMAL)
            if forced:
                self._publish("door_forced", time=local_iso(self.ctx.now()))
            self._held_timer = self._spawn(self._held_alarm())
        else:
            self._record(MAJOR_EVENT, MINOR_DOOR_CLOSE_NORMAL)
            if self._held_timer is not None:
                self._held_timer.cancel()
                self._held_timer = None
        self._state_changed("forced" if forced else "physical")

    async def _held_alarm(self) -> None:
        await asyncio.sleep(self.params.held_open_alarm_s)
        self._record(MAJOR_EVENT, MINOR_DOOR_OPEN_TIMEOUT)
        self._publish("door_held", time=local_iso(self.ctx.now()), after_s=self.params.held_open_alarm_s)

    async def _pulse(self) -> None:
        await asyncio.sleep(self.open_duration_s)
        self._relock = None
        self._set_lock(False)
        self._state_changed("relock")

    async def _command(self, action: str, params: dict[str, Any]) -> None:
        reason = str(params.get("reason", "linkage"))
        actions: dict[str, Callable[[], None]] = {
            "unlock": lambda: self.release(reason),
            "lock": lambda: self.secure(reason),
            "force_open": lambda: self.physical(True, forced=True),
            "hold_open": lambda: self.physical(True),
            "close": lambda: self.physical(False),
        }
        act = actions.get(action)
        if act is None:
            raise ValueError(f"door {self.ctx.spec.id} does not take {action!r}")
        if action == "unlock" and reason == "fire" and self.ctx.spec.fault(DoorNoUnlockOnFire):
            return
        slow = self.ctx.spec.fault(LinkageSlow)
        if slow is not None and action in ("unlock", "lock"):
            self._spawn(self._after(slow.delay_s, act))
        else:
            act()

    @staticmethod
    async def _after(delay_s: float, act: Callable[[], None]) -> None:
        await asyncio.sleep(delay_s)
        act()

    # -- ISAPI resources ---------------------------------------------------------------------

    async def _remote_control(self, request: web.Request) -> web.Response:
        if int(request.match_info["n"]) not in range(1, DOORS + 1):
            return response_status(request, 6, "badParameters", 400)
        raw = await request.read()
        cmd: str | None
        if request.query.get("format") == "json":
            try:
                cmd = json.loads(raw)["RemoteControlDoor"]["cmd"]
            except (ValueError, KeyError, TypeError):
                return response_status(request, 6, "badJsonContent", 400)
        else:
            try:
                cmd = find_text(ET.fromstring(raw), "cmd")
            except ET.ParseError:
                return bad_xml(request)
        who = {"netUser": request[USER_KEY], "remoteHostAddr": request.remote or ""}
        if cmd == "open":
            self._record(MAJOR_OPERATION, MINOR_REMOTE_OPEN_DOOR, **who)
            self._cancel_relock()
            self._set_lock(True)
            if self.mode == "normal":
                self._relock = self._spawn(self._pulse())
        elif cmd == "close":
            self._record(MAJOR_OPERATION, MINOR_REMOTE_CLOSE_DOOR, **who)
            self._cancel_relock()
            self._set_mode("normal")
            self._set_lock(False)
        elif cmd == "alwaysOpen":
            self._record(MAJOR_OPERATION, MINOR_REMOTE_ALWAYS_OPEN, **who)
            self._cancel_relock()
            self._set_mode("alwaysOpen")
            self._set_lock(True)
        elif cmd == "alwaysClose":
            self._record(MAJOR_OPERATION, MINOR_REMOTE_ALWAYS_CLOSE, **who)
            self._cancel_relock()
            self._set_mode("alwaysClose")
            self._set_lock(False)
        else:
            return response_status(request, 6, "badParameters", 400)
        self._state_changed("remote")
        return response_status(request, 1, "ok")

    async def _door_param(self, request: web.Request) -> web.Response:
        if int(request.match_info["n"]) not in range(1, DOORS + 1):
            return response_status(request, 6, "badParameters", 400)
        inner = "".join(
            [
                el("doorName", self.ctx.spec.id),
                el("magneticType", "alwaysClose"),
                el("openButtonType", "alwaysOpen"),
                el("openDuration", int(self.open_duration_s)),
                el("disabledOpenDuration", 10),
                el("magneticAlarmTimeout", round(self.params.held_open_alarm_s)),
                el("enableDoorLock", True),
                el("enableLeaderCard", False),
            ]
        )
        return xml_response("DoorParam", inner)

    async def _work_status(self, _request: web.Request) -> web.Response:
        door_status = {"normal": 4, "alwaysOpen": 2, "alwaysClose": 3}[self.mode]
        return web.json_response(
            {
                "AcsWorkStatus": {
                    "doorLockStatus": [1 if self.unlocked else 0],
                    "doorStatus": [door_status],
                    "magneticStatus": [1 if self.physical_open else 0],
                    "antiSneakStatus": "close",
                    "hostAntiDismantleStatus": "close",
                    "cardReaderOnlineStatus": [1],
                }
            }
        )

    async def _acs_event(self, request: web.Request) -> web.Response:
        if request.query.get("format") != "json":
            return response_status(request, 4, "notSupport", 400)
        try:
            cond = json.loads(await request.read())["AcsEventCond"]
            search_id = str(cond["searchID"])
            position = int(cond["searchResultPosition"])
            wanted = int(cond["maxResults"])
            major = int(cond.get("major", 0))
            minor = int(cond.get("minor", 0))
            start = parse_time(cond["startTime"]) if cond.get("startTime") else None
            end = parse_time(cond["endTime"]) if cond.get("endTime") else None
        except ValueError:
            return response_status(request, 5, "badJsonFormat", 400)
        except (KeyError, TypeError):
            return response_status(request, 6, "badParameters", 400)
        if position < 0 or wanted <= 0:
            return response_status(request, 6, "badParameters", 400)
        matches = [
            r
            for r in self.events
            if (major == 0 or r.major == major)
            and (minor == 0 or r.minor == minor)
            and (start is None or r.time >= start)
            and (end is None or r.time <= end)
        ]
        page = matches[position : position + min(wanted, PAGE_CAP)]
        status = "NO MATCH" if not page else "MORE" if position + len(page) < len(matches) else "OK"
        result: dict[str, Any] = {
            "searchID": search_id,
            "responseStatusStrg": status,
            "numOfMatches": len(page),
            "totalMatches": len(matches),
        }
        if page:
            result["InfoList"] = [r.info() for r in page]
        return web.json_response({"AcsEvent": result}, dumps=lambda o: json.dumps(o, ensure_ascii=False))
