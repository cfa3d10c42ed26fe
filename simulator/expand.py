"""Repeated devices in a community file, so that a 1,000-camera site stays a readable file.

A list item `{repeat: N, vars: {...}, per: {...}, template: {...}}` inside `devices` (or inside a
gateway's `devices`) becomes N items: every string in the template is formatted with `n`
(1..N), each var (a list, cycled by n) and each `per` counter (`per: {nvr: 64}` gives
nvr = (n - 1) // 64 + 1 and nvr_slot = (n - 1) % 64 + 1). A repeat nested in a template (a
gateway's children) sees the outer values as parent_n, parent_<var>. Plain items pass through.
"""

from __future__ import annotations

import re
from typing import Any

_WHOLE = re.compile(r"\{(\w+)\}")


class ExpandError(ValueError):
    pass


def expand_devices(items: list[Any], where: str = "devices") -> list[Any]:
    out: list[Any] = []
    for index, item in enumerate(items):
        if isinstance(item, dict) and "repeat" in item:
            out.extend(_repeat(item, f"{where}[{index}]"))
        else:
            out.append(_children(item, f"{where}[{index}]"))
    return out


def _children(item: Any, where: str) -> Any:
    if isinstance(item, dict) and isinstance(item.get("gateway"), dict):
        gateway = dict(item["gateway"])
        gateway["devices"] = expand_devices(gateway.get("devices") or [], f"{where}.gateway.devices")
        return {**item, "gateway": gateway}
    return item


def _repeat(item: dict[str, Any], where: str) -> list[Any]:
    unknown = set(item) - {"repeat", "vars", "per", "template", "parent"}
    if unknown:
        raise ExpandError(f"{where}: unknown keys {sorted(unknown)} beside repeat")
    count, template = item["repeat"], item.get("template")
    if not isinstance(count, int) or count < 0 or not isinstance(template, dict):
        raise ExpandError(f"{where}: repeat needs a count and a template mapping")
    variables: dict[str, list[Any]] = item.get("vars") or {}
    per: dict[str, int] = item.get("per") or {}
    for name, values in variables.items():
        if not isinstance(values, list) or not values:
            raise ExpandError(f"{where}: vars.{name} must be a non-empty list")
    out = []
    for n in range(1, count + 1):
        env: dict[str, Any] = {f"parent_{k}": v for k, v in (item.get("parent") or {}).items()}
        env["n"] = n
        env |= {name: values[(n - 1) % len(values)] for name, values in variables.items()}
        env |= {name: (n - 1) // size + 1 for name, size in per.items()}
        env |= {f"{name}_slot": (n - 1) % size + 1 for name, size in per.items()}
        try:
            out.append(_children(_fill(template, env), f"{where}#{n}"))
        except (KeyError, ValueError, IndexError) as exc:
            raise ExpandError(f"{where}: template cannot be filled: {exc}") from exc
    return out


def _fill(value: Any, env: dict[str, Any]) -> Any:
    if isinstance(value, str):
        # A field that is a single placeholder keeps the variable's own type (bool, int, ...).
        whole = _WHOLE.fullmatch(value)
        if whole and whole.group(1) in env:
            return env[whole.group(1)]
        return value.format(**env)
    if isinstance(value, dict):
        if "repeat" in value:  # a nested repeat fills later, with this one's values as parent_*
            return {**value, "parent": {k: v for k, v in env.items() if not k.startswith("parent_")}}
        return {k: _fill(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, env) for v in value]
    return value
