"""A management platform's API as zhian knows it, kept as data (collectors/platform_profiles/).

Two API families exist in the code: `zhian` (bearer login, GET routes, docs/platform-api.md) and
`artemis` (Hikvision's OpenAPI gateway: every request signed with the AppKey/AppSecret, JSON POST
routes, docs/platform-artemis.md). A profile names its family and holds everything else that
differs between sites and versions: the base path, the routes, the page size, and the table from
the platform's event types to zhian's alert types. A site's own profile is loaded by path
(`profile_file:`) and validated the same way.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

PROFILE_DIR = Path(__file__).parent / "platform_profiles"
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
# The alert types probes ask for (docs/platform-api.md); a profile maps the platform's own to these.
ALERT_TYPES = frozenset(
    {
        "fire_alarm", "smoke_alarm", "gas_alarm", "emergency_button", "device_offline", "video_loss",
        "door_forced", "intrusion", "charger_overload", "water_level_low", "pipe_pressure_low",
        "door_held", "device_online",
    }
)  # fmt: skip
ARTEMIS_ROUTES = ("cameras_online", "encoders_online", "events", "subscribe", "unsubscribe", "subscriptions")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlatformProfile(_Strict):
    name: str = Field(pattern=_NAME.pattern)
    api: Literal["zhian", "artemis"]
    description: str = ""
    base: str = Field(pattern=r"^(/[A-Za-z0-9._~-]+)*$")  # prefix of every route ("" allowed)
    routes: dict[str, str] = Field(default_factory=dict)  # name -> path under base
    page_size: int = Field(default=500, ge=1, le=1000)
    # the platform's event type code -> zhian's alert type (artemis: eventType numbers)
    event_types: dict[int, str] = Field(default_factory=dict)
    callback_path: str = Field(default="/zhian/alerts", pattern=r"^/[A-Za-z0-9/._~-]*$")

    @model_validator(mode="after")
    def _check(self) -> PlatformProfile:
        for code, alert in self.event_types.items():
            if alert not in ALERT_TYPES:
                raise ValueError(f"event_types.{code}: unknown alert type {alert!r}")
        for name, route in self.routes.items():
            if not route.startswith("/"):
                raise ValueError(f"routes.{name}: must start with /")
        if self.api == "artemis":
            missing = [r for r in ARTEMIS_ROUTES if r not in self.routes]
            if missing:
                raise ValueError(f"routes: an artemis profile needs {', '.join(missing)}")
            if not self.event_types:
                raise ValueError("event_types: an artemis profile needs at least one")
        return self

    def route(self, name: str) -> str:
        return self.base + self.routes[name]

    def codes_for(self, alert_type: str | None) -> list[int]:
        """The platform's event types that mean this alert type (all mapped types for None)."""
        return sorted(c for c, t in self.event_types.items() if alert_type is None or t == alert_type)


class ProfileError(ValueError):
    """A profile that cannot be used, with the file and the place named."""


def parse_profile(text: str, source: str = "<profile>") -> PlatformProfile:
    try:
        return PlatformProfile.model_validate(yaml.safe_load(text))
    except yaml.YAMLError as exc:
        raise ProfileError(f"{source}: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top)"
        raise ProfileError(f"{source}: {where}: {first['msg']}") from exc


def load_profile(name: str, path: Path | None = None) -> PlatformProfile:
    """A site's profile file when given, else the one shipped as platform_profiles/<name>.yaml."""
    if path is None:
        if not _NAME.match(name):
            raise ProfileError(f"bad platform profile name {name!r}")
        path = PROFILE_DIR / f"{name}.yaml"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(f"no platform profile {name!r}: {exc}") from exc
    profile = parse_profile(text, str(path))
    if profile.name != name:
        raise ProfileError(f"{path}: names itself {profile.name!r}, the config says {name!r}")
    return profile
