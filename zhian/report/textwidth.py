"""Terminal width of mixed Chinese / Latin text, so that tables line up."""

from __future__ import annotations

import unicodedata


def width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def pad(text: str, cells: int) -> str:
    return text + " " * max(0, cells - width(text))


def wrap(text: str, cells: int) -> list[str]:
    """Wrap by display cells; breaks Latin text at spaces where it can, Chinese anywhere."""
    lines: list[str] = []
    line = ""
    for word in _tokens(text):
        if line and width(line + word) > cells:
            lines.append(line.rstrip())
            line = word.lstrip()
        else:
            line += word
    if line.strip():
        lines.append(line.rstrip())
    return lines or [""]


def _tokens(text: str) -> list[str]:
    tokens: list[str] = []
    current = ""
    for ch in text:
        if unicodedata.east_asian_width(ch) in ("W", "F"):
            if current:
                tokens.append(current)
                current = ""
            tokens.append(ch)
        elif ch == " ":
            tokens.append(current + " ")
            current = ""
        else:
            current += ch
    if current:
        tokens.append(current)
    return tokens
