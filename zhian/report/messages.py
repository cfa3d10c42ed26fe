"""The report's words in Chinese (the default) and English, from messages.yaml: labels are data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from zhian.report.model import Lang

LANGS: tuple[Lang, ...] = ("zh", "en")


@dataclass(frozen=True)
class Messages:
    lang: Lang
    table: Mapping[str, Mapping[str, str]]

    def __call__(self, key: str, **values: Any) -> str:
        """The text of `key` in this language, with {placeholders} filled; an unknown key is a bug."""
        text = self.table[key][self.lang]
        return text.format(**values) if values else text

    def has(self, key: str) -> bool:
        return key in self.table


@cache
def load_table() -> dict[str, dict[str, str]]:
    raw = yaml.safe_load((resources.files("zhian.report") / "messages.yaml").read_text(encoding="utf-8"))
    table: dict[str, dict[str, str]] = {}
    for key, entry in raw.items():
        if not isinstance(entry, dict) or set(entry) != set(LANGS):
            raise ValueError(f"zhian/report/messages.yaml: {key} needs exactly zh and en")
        table[str(key)] = {k: str(v) for k, v in entry.items()}
    return table


def messages(lang: Lang) -> Messages:
    return Messages(lang, load_table())
