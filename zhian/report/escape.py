"""Text from devices made safe for each format: nothing a device says can become markup.

Control characters are shown as \\xNN (XML 1.0 cannot hold most of them, and they have no place
in a report); then HTML escapes <, >, & and both quotes, so text is safe in content and attributes.
"""

from __future__ import annotations

import html
import re

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def clean(text: object) -> str:
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))


def esc(text: object) -> str:
    return html.escape(clean(text), quote=True)
