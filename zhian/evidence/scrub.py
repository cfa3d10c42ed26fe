"""Literal secrets removed from evidence with one Aho-Corasick automaton over all of them.

A large site holds a secret per device (some 1,300 on the large simulated site): searching every
string of every record for each one cost a run a sixth of its CPU. One automaton finds all of them
in a single pass over the text, whatever their number. The automaton is ahocorasick-rs's (Rust): the
pure C pyahocorasick walked a 3 kB record in ten times the time.

Most records hold no secret at all (collectors redact already): `shows_in` tells that from the
record's serialized bytes in one pass, so that only a record holding one is walked string by string.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from ahocorasick_rs import AhoCorasick, BytesAhoCorasick, MatchKind

REDACTED = "[redacted]"
MIN_SECRET = 4  # shorter values would blank ordinary words (and say what the secret is not)


class Scrubber:
    """Replaces every literal secret (at least MIN_SECRET characters) in strings, at any depth."""

    def __init__(self, secrets: Iterable[str]) -> None:
        words = sorted({s for s in secrets if len(s) >= MIN_SECRET})
        self._automaton: AhoCorasick | None = None
        self._shown: BytesAhoCorasick | None = None
        if words:
            self._automaton = AhoCorasick(words, matchkind=MatchKind.LeftmostLongest)
            # JSON escapes quotes, backslashes and control characters inside a string, character by
            # character: a string holding a secret holds its escaped form once serialized
            escaped = {json.dumps(w, ensure_ascii=False)[1:-1] for w in words}
            self._shown = BytesAhoCorasick(sorted(w.encode() for w in escaped | set(words)))

    def text(self, value: str) -> str:
        """The string with each leftmost, longest secret replaced; the same object when none is in it."""
        if self._automaton is None:
            return value
        matches = self._automaton.find_matches_as_indexes(value)
        if not matches:
            return value
        parts: list[str] = []
        done = 0
        for _, start, end in matches:
            parts += (value[done:start], REDACTED)
            done = end
        parts.append(value[done:])
        return "".join(parts)

    def shows_in(self, serialized: bytes) -> bool:
        """Whether any secret shows in UTF-8 JSON (as written by `json.dumps(..., ensure_ascii=False)`):
        False means scrubbing the strings it was made of would change none of them."""
        return self._shown is not None and bool(self._shown.find_matches_as_indexes(serialized))

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {k: self(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self(v) for v in value]
        return value
