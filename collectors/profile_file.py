"""A vendor profile as data (a register map, an MQTT topic shape): read from a site's own file and
validated, or one line saying why it cannot be used."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def read_profile_text(path: Path, what: str, error: type[ValueError]) -> str:
    if path.is_dir():
        raise error(f"{path} is a directory, not {what}")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: {getattr(exc, 'strerror', None) or exc}") from None


def parse_profile_text(text: str, source: str, model: type[M], error: type[ValueError]) -> M:
    """The profile validated; the first problem named by its place in the file."""
    try:
        return model.model_validate(yaml.safe_load(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise error(f"{source}{where}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top)"
        raise error(f"{source}: {where}: {first['msg']}") from None
