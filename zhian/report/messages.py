"""The report's words in Chinese (the default) and English, from gettext catalogues.

`locale/<lang>/LC_MESSAGES/report.po` are ordinary PO files (edit them with any PO editor, check
them with Babel or msgfmt); Babel reads them at run time. A msgid is the key the code asks for
(`status.fail`, `reason.plaintext`), the msgstr its text with `{name}` placeholders (str.format).
Loading checks that both catalogues hold the same keys, every one translated, with the same
placeholders, and names the entry at fault.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from babel.messages.pofile import read_po

from zhian.report.model import Lang

LANGS: tuple[Lang, ...] = ("zh", "en")
DOMAIN = "report"


class _Missing(dict[str, Any]):
    """Facts a template names but a finding lacks render as an em dash, never as an error."""

    def __missing__(self, key: str) -> str:
        return "—"


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

    def reason(self, code: str) -> str:
        """A finding's reason code as a phrase (the code itself only where the catalogue lacks it)."""
        key = "reason." + code
        return self(key) if key in self.table else code

    def fill(self, key: str, values: Mapping[str, Any]) -> str:
        """`key` filled from a mapping that may lack some names (a finding's facts)."""
        return string.Formatter().vformat(self.table[key][self.lang], (), _Missing(values))


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def read_catalogue(lang: str) -> dict[str, str]:
    path = resources.files("zhian.report") / "locale" / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=None, domain=DOMAIN)
    entries: dict[str, str] = {}
    for message in catalog:
        if not message.id:
            continue
        if not isinstance(message.id, str) or not isinstance(message.string, str) or not message.string:
            raise ValueError(f"locale/{lang}/LC_MESSAGES/{DOMAIN}.po: {message.id!r} is not translated")
        entries[message.id] = message.string
    return entries


@cache
def load_table() -> dict[str, dict[str, str]]:
    catalogues = {lang: read_catalogue(lang) for lang in LANGS}
    zh, en = catalogues["zh"], catalogues["en"]
    for key in sorted(set(zh) ^ set(en)):
        missing = "en" if key in zh else "zh"
        raise ValueError(f"locale/{missing}/LC_MESSAGES/{DOMAIN}.po: {key} is missing")
    for key in zh:
        if placeholders(zh[key]) != placeholders(en[key]):
            raise ValueError(f"{DOMAIN}.po: {key}: zh and en use different placeholders")
    return {key: {lang: catalogues[lang][key] for lang in LANGS} for key in zh}


def messages(lang: Lang) -> Messages:
    return Messages(lang, load_table())
