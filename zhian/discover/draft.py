"""The draft config: what was found, in the config's format, with every unknown a marked TODO.

It passes `zhian config check --no-secrets`: the unknown area is one area `todo` (kind
public_space) that every device sits in, the community's name says TODO, devices no login opened
use the credentials `todo` (its password an environment variable nobody has set yet). The header
comment lists what to fill in before `zhian run`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml

from zhian.discover.found import Found
from zhian.discover.gateways import Gateway, child_type
from zhian.discover.iot import Panel

TODO_AREA = "todo"
TODO_LOGIN = "todo"
KIND_LIST = {"camera": "cameras", "nvr": "nvrs", "door": "doors"}


def unique_ids(found: Iterable[Found]) -> list[Found]:
    seen: set[str] = set()
    out = []
    for f in found:
        base, n = f.id, 1
        while f.id in seen:
            n += 1
            f.id = f"{base}-{n}"
        seen.add(f.id)
        out.append(f)
    return out


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    tls: bool
    login: str | None  # the login's name, None: anonymous (a TODO)


def draft_config(
    found: Sequence[Found],
    logins: Sequence[tuple[str, str, str]],
    sources: str,
    *,
    broker: Broker | None = None,
    gateways: Sequence[Gateway] = (),
    panels: Sequence[Panel] = (),
) -> str:
    """The YAML text. `logins`: (name, username, env variable) of the logins given."""
    found = unique_ids(found)
    ids = {f.id for f in found}
    credentials: dict[str, Any] = {
        name: {"username": user, "password": f"env:{env}"} for name, user, env in logins
    }
    inventory: dict[str, list[dict[str, Any]]] = {"cameras": [], "nvrs": [], "doors": []}
    ids |= {p.id for p in panels}
    todo_login = False
    for f in sorted(found, key=lambda d: (d.kind, d.id)):
        login = f.login or TODO_LOGIN
        todo_login |= f.login is None
        row: dict[str, Any] = {
            "id": f.id, "host": f.host, "port": f.port, "area": TODO_AREA, "credentials": login,
            "tls": f.tls, "path": f.path,
        }  # fmt: skip
        if f.kind != "camera":
            row["protocol"] = f.protocol
        if f.kind == "camera" and f.recorded_by in ids:
            row |= {"recorded_by": f.recorded_by, "channel": f.channel or 1}
        tags = {k: v for k, v in f.tags.items() if v not in ("", None)}
        if f.note:
            tags["todo"] = f.note
        if tags:
            row["tags"] = tags
        inventory[KIND_LIST[f.kind]].append(row)
    inventory |= _iot(broker, gateways, panels)
    todo_login |= broker is not None and broker.login is None
    if todo_login:
        credentials[TODO_LOGIN] = {"username": "TODO", "password": "env:ZHIAN_TODO_PASSWORD"}
    doc = {
        "version": 1,
        "community": {"name": "TODO: the community's name", "operator": "", "target_level": "C"},
        "areas": [
            {"id": TODO_AREA, "kind": "public_space", "name": "TODO: the site's areas; move each device"}
        ],
        "credentials": credentials,
        "inventory": {k: v for k, v in inventory.items() if v},
    }
    counts = ", ".join(f"{len(v)} {k}" for k, v in inventory.items() if v) or "nothing"
    header = [
        f"# Drafted by zhian discover on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC from {sources}: {counts}.",
        "# Before zhian run, fill in every TODO:",
        "#  - community.name and target_level;",
        f"#  - areas: the site's areas and their kinds; move each device out of area {TODO_AREA!r};",
        "#  - credentials: the user names, and the environment variables (or files) holding passwords;",
        "#  - cameras' recorded_by / channel where an NVR records them (drafted from its recordings);",
        "#  - the brokers, gateways, fire panels and the platform this scan does not see;",
        *(f"#  - gateway {gw.id}: {gw.todo};" for gw in gateways if gw.todo),
        "# Then: zhian config check --no-secrets <this file> (without the flag once the secrets are set)",
    ]
    return "\n".join(header) + "\n" + yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def _iot(
    broker: Broker | None, gateways: Sequence[Gateway], panels: Sequence[Panel]
) -> dict[str, list[dict[str, Any]]]:
    """The brokers, gateways (with their children) and fire panels of the draft."""
    out: dict[str, list[dict[str, Any]]] = {}
    if panels:
        out["panels"] = [
            {"id": p.id, "host": p.host, "port": p.port, "area": TODO_AREA, "unit_id": p.unit_id,
             "profile": p.profile, "zones": [{"id": n, "area": TODO_AREA} for n in range(1, p.zones + 1)],
             **({"tags": {"todo": p.todo}} if p.todo else {})}
            for p in panels
        ]  # fmt: skip
    if broker is None:
        return out
    out["brokers"] = [
        {"id": "broker", "host": broker.host, "port": broker.port, "area": TODO_AREA,
         "credentials": broker.login or TODO_LOGIN, "tls": broker.tls}
    ]  # fmt: skip
    rows = []
    for gw in gateways:
        children = []
        for child, fields in sorted(gw.devices.items()):
            kind = child_type(fields, gw.exposes.get(child, ()))
            row: dict[str, Any] = {"id": child, "type": kind or "intercom", "area": TODO_AREA}
            if kind is None:
                row["tags"] = {"todo": "type: nothing it sent told it (intercom drafted)"}
            children.append(row)
        gateway: dict[str, Any] = {"id": gw.id, "broker": "broker", "area": TODO_AREA}
        if gw.profile_file is not None:
            gateway["profile_file"] = str(gw.profile_file.resolve())
        else:
            gateway["profile"] = gw.profile
        gateway["topic_root"] = gw.topic_root
        if gw.site:
            gateway["site"] = gw.site
        if gw.heartbeat_s:
            gateway["heartbeat_s"] = gw.heartbeat_s
        rows.append(gateway | {"devices": children})
    if rows:
        out["gateways"] = rows
    return out
