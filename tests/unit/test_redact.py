"""`redact`: every secret shape is removed whatever its case, and a text with none is unchanged.

The shapes are tried only when a text holds one of their words (lower-cased); these cases pin the
words to the shapes, so a filter too narrow for its pattern fails here.
"""

from __future__ import annotations

import pytest

from collectors.exchange import redact

CASES = [
    ('<wsse:Password Type="PasswordDigest">c2VjcmV0</wsse:Password>', "c2VjcmV0"),
    ("<wsse:Nonce EncodingType='b64'>bm9uY2U=</wsse:Nonce>", "bm9uY2U="),
    ("POST /x HTTP/1.1\nAUTHORIZATION: Digest username=a, response=ff00ee\n", "ff00ee"),
    ("Proxy-Authorization: Basic YTpi\n", "YTpi"),
    ("Set-Cookie: session=s3ss10n; HttpOnly\n", "s3ss10n"),
    ("header BEARER abc.def-ghi", "abc.def-ghi"),
    ('{"Password": "hunter22"}', "hunter22"),
    ('{"ACCESS_TOKEN" : "t0k3n"}', "t0k3n"),
    ('{"secret":"sh"}', '"sh"'),
    ('{"passwd": "pw99"}', "pw99"),
    ("login?user=a&PassWord=pw123&x=1", "pw123"),
    ("q=1&token=tt77", "tt77"),
]


@pytest.mark.parametrize(("text", "secret"), CASES)
def test_each_shape_is_redacted_in_any_case(text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out and "[redacted]" in out


def test_a_text_without_secrets_is_unchanged() -> None:
    text = "<tt:Recording><tt:Token>rec-1</tt:Token><tt:Source>PasswordPolicy</tt:Source></tt:Recording>"
    assert redact(text) == text


def test_literal_secrets_are_removed() -> None:
    assert redact("user inspector pw Zx9!long", ("Zx9!long",)) == "user inspector pw [redacted]"
