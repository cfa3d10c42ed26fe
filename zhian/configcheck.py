"""Everything a run would find wrong with its config before it touches the site, found at once.

`zhian config check` and `zhian run` (before it makes the run directory) go through the same
checks: the file's size and YAML, keys written twice, the format (pydantic, every error), ids
and references across items, two devices on one address, the `ca_file`, the vendor profiles each
device names (shipped, or the site's own file beside the config) and, unless told not to, every
`env:`/`file:` secret. Each problem is its own line naming the file, the line and the key.
"""

from __future__ import annotations

import difflib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from collectors.modbus.profile import ProfileError, load_profile, load_profile_file
from collectors.mqtt.profile import ProfileError as MqttProfileError
from collectors.mqtt.profile import load_profile as load_mqtt_profile
from collectors.mqtt.profile import load_profile_file as load_mqtt_profile_file
from collectors.platform_profile import ProfileError as PlatformProfileError
from collectors.platform_profile import load_profile as load_platform_profile
from mapping.rules import load_rules
from zhian.config import (
    ALL_PROBLEMS,
    Config,
    Door,
    Gateway,
    devices_of,
    reference_problems,
    resolve_secret,
)
from zhian.errors import UsageError
from zhian.yamlsource import Loc, Problem, YamlError, YamlSource, duplicate_keys, no_gc, read_yaml

MAX_BYTES = 32_000_000  # a 1,000-camera site is 0.2 MB; 50,000 MQTT devices under gateways, 4.2 MB
SHOWN = 50  # problems listed; the count is always complete
T = TypeVar("T")


class ConfigError(UsageError):
    """A config with problems: one line per problem, `file:line: key: what`."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


@dataclass(frozen=True)
class Checked:
    """A config that passed, with the paths in it made absolute (they are relative to the file)."""

    config: Config
    base: Path


def _format(source: YamlSource, problems: list[Problem]) -> list[str]:
    rows: list[tuple[int, str]] = []
    for p in problems:
        line = p.line if p.line is not None else source.line_of(p.loc)
        key = ".".join(str(part) for part in p.loc) or "(top)"
        where = f":{line}" if line else ""
        other = f" (line {source.line_of(p.other)})" if p.other is not None else ""
        rows.append((line or 0, f"{source.path}{where}: {key}: {p.message}{other}"))
    rows.sort(key=lambda r: r[0])
    lines = [text for _, text in rows[:SHOWN]]
    if len(rows) > SHOWN:
        lines.append(f"{source.path}: and {len(rows) - SHOWN} more problems")
    return lines


def _validation_problems(exc: ValidationError) -> list[Problem]:
    out = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        out.append(Problem(loc, err["msg"]))
    return out


def _relative(base: Path, path: Path) -> Path:
    return path if path.is_absolute() else base / path


def address_problems(config: Config) -> list[Problem]:
    """Two devices at one host:port are one device entered twice, or a typo; doors of one
    controller share its address and differ by their door number."""
    seen: dict[tuple[str, int], tuple[Loc, Any]] = {}
    problems = []
    for loc, device in devices_of(config.inventory):
        if isinstance(device, Gateway):
            continue
        ports = [device.port, *([device.plain_port] if getattr(device, "plain_port", None) else [])]
        for port in ports:
            key = (device.host.lower(), port)
            first = seen.setdefault(key, (loc, device))
            other = first[1]
            if other is device or (
                isinstance(device, Door) and isinstance(other, Door) and device.door != other.door
            ):
                continue
            message = f"{device.host}:{port} is also the address of {other.id!r}"
            problems.append(Problem((*loc, "host"), message, other=first[0]))
    return problems


def ca_problems(config: Config, base: Path) -> list[Problem]:
    """The trust anchor the run loads: a readable file of PEM certificates."""
    if config.ca_file is None:
        return []
    path = _relative(base, config.ca_file)
    loc = ("ca_file",)
    if path.is_dir():
        return [Problem(loc, f"{path} is a directory, not a PEM file")]
    try:
        ssl.create_default_context(cafile=str(path))
    except FileNotFoundError:
        return [Problem(loc, f"{path}: no such file")]
    except OSError as exc:
        if isinstance(exc, ssl.SSLError):
            return [Problem(loc, f"{path} holds no PEM certificate ({exc.reason or exc})")]
        return [Problem(loc, f"{path}: {exc.strerror}")]
    return []


class _Once:
    """Each profile read once per check: fifty gateways naming one profile cost one read."""

    def __init__(self) -> None:
        self.seen: dict[tuple[Any, ...], Any] = {}

    def __call__(self, load: Callable[..., T], *args: Any) -> T:
        key = (load, *args)
        if key not in self.seen:
            try:
                self.seen[key] = load(*args)
            except ValueError as exc:  # each loader's ProfileError
                self.seen[key] = exc
        result = self.seen[key]
        if isinstance(result, ValueError):
            raise result
        loaded: T = result
        return loaded


def profile_problems(config: Config, base: Path) -> list[Problem]:
    """Every vendor profile a device names is found and valid."""
    problems = []
    once = _Once()
    for i, panel in enumerate(config.inventory.panels):
        loc: tuple[int | str, ...] = ("inventory", "panels", i)
        try:
            if panel.profile_file is not None:
                once(load_profile_file, _relative(base, panel.profile_file))
            else:
                once(load_profile, panel.profile)
        except ProfileError as exc:
            key = "profile_file" if panel.profile_file is not None else "profile"
            problems.append(Problem((*loc, key), str(exc)))
    platform = config.inventory.platform
    if platform is not None:
        own = _relative(base, Path(platform.profile_file)) if platform.profile_file else None
        try:
            load_platform_profile(platform.profile, own)
        except PlatformProfileError as exc:
            key = "profile_file" if own is not None else "profile"
            problems.append(Problem(("inventory", "platform", key), str(exc)))
    for i, gw in enumerate(config.inventory.gateways):
        loc = ("inventory", "gateways", i)
        key = "profile_file" if gw.profile_file is not None else "profile"
        try:
            if gw.profile_file is not None:
                profile = once(load_mqtt_profile_file, _relative(base, gw.profile_file))
            else:
                profile = once(load_mqtt_profile, gw.profile)
        except MqttProfileError as exc:
            problems.append(Problem((*loc, key), str(exc)))
            continue
        if profile.needs_site and not gw.site:
            problems.append(
                Problem((*loc, "site"), f"the {profile.name} topic tree has a site level: give site")
            )
    return problems


def schedule_problems(config: Config) -> list[Problem]:
    """A monitor.schedule entry must name a probe the rules plan: a misspelt one would leave that
    probe on its default interval without a word."""
    if not config.monitor.schedule:
        return []
    known = sorted({probe for rule in load_rules().rules for probe in rule.probes})
    problems: list[Problem] = []
    for probe in config.monitor.schedule:
        if probe not in known:
            near = difflib.get_close_matches(probe, known, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            problems.append(Problem(("monitor", "schedule", probe), f"no probe {probe!r} in the rules{hint}"))
    return problems


def secret_problems(config: Config, base: Path) -> list[Problem]:
    problems = []
    for name, cred in config.credentials.items():
        try:
            resolve_secret(cred.password, base)
        except UsageError as exc:
            problems.append(Problem(("credentials", name, "password"), str(exc)))
    return problems


def check_config(path: Path, *, secrets: bool = True) -> Checked:
    """The config at `path`, or a ConfigError listing every problem a run would meet."""
    with no_gc():
        return _check(path, secrets)


def _check(path: Path, secrets: bool) -> Checked:
    try:
        source = read_yaml(path, MAX_BYTES)
    except YamlError as exc:
        raise ConfigError([str(exc)]) from None
    problems = duplicate_keys(source)
    try:
        config = Config.model_validate(source.data, context={ALL_PROBLEMS: True})
    except ValidationError as exc:
        raise ConfigError(_format(source, problems + _validation_problems(exc))) from None
    base = path.resolve().parent
    problems += reference_problems(config)
    problems += address_problems(config)
    problems += ca_problems(config, base)
    problems += profile_problems(config, base)
    problems += schedule_problems(config)
    if secrets:
        problems += secret_problems(config, base)
    if problems:
        raise ConfigError(_format(source, problems))
    if config.ca_file is not None:
        config = config.model_copy(update={"ca_file": _relative(base, config.ca_file)})
    return Checked(config, base)
