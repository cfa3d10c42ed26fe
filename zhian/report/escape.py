"""Text from devices made safe for each format: nothing a device says can become markup.

Control characters are shown as \\xNN (XML 1.0 cannot hold most of them, and they have no place
in a report); then HTML escapes <, >, & and both quotes, so text is safe in content and attributes.
"""

from __future__ import annotations

import html
import re

_CONTROLS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff"
_CONTROL = re.compile(f"[{_CONTROLS}]")
_UNSAFE = re.compile(f"[{_CONTROLS}&<>\"']")  # what either step changes: most text holds none


def clean(text: object) -> str:
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))


def esc(text: object) -> str:
    """(A large run's report escapes some 700,000 strings: the one search for what needs escaping
    costs less than the two steps that find nothing to change.)"""
    text = str(text)
    return text if _UNSAFE.search(text) is None else html.escape(clean(text), quote=True)
