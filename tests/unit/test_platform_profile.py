"""Platform profiles as data, and the artemis gateway's string-to-sign."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

import pytest

from collectors.artemis import signed_headers, string_to_sign
from collectors.platform_profile import ProfileError, load_profile, parse_profile

ARTEMIS = """
name: site-isc
api: artemis
base: /artemis
routes:
  {cameras_online: /a, encoders_online: /b, events: /c, subscribe: /d, unsubscribe: /e, subscriptions: /f}
event_types: {131329: video_loss}
"""


def test_shipped_profiles_load() -> None:
    assert load_profile("zhian").api == "zhian"
    hik = load_profile("hikvision-artemis")
    assert hik.route("events") == "/artemis/api/els/v1/events/search"
    assert hik.event_types[131329] == "video_loss" and 131588 in hik.codes_for("intrusion")


def test_site_profile_by_path(tmp_path: Path) -> None:
    path = tmp_path / "isc.yaml"
    path.write_text(ARTEMIS, encoding="utf-8")
    assert load_profile("site-isc", path).codes_for(None) == [131329]
    with pytest.raises(ProfileError, match="names itself 'site-isc'"):
        load_profile("other", path)
    with pytest.raises(ProfileError, match="no platform profile"):
        load_profile("site-isc", tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("{131329: video_loss}", "{131329: fire}"), "unknown alert type 'fire'"),
        (("subscriptions: /f", "other: /f"), "needs subscriptions"),
        (("events: /c", "events: c"), "must start with /"),
        (("api: artemis", "api: dahua"), "api"),
    ],
)
def test_bad_profiles_name_the_place(change: tuple[str, str], message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        parse_profile(ARTEMIS.replace(*change), "isc.yaml")


def test_string_to_sign_follows_the_gateway() -> None:
    headers = {
        "Accept": "*/*",
        "Content-Type": "application/json",
        "X-Ca-Key": "29666671",
        "X-Ca-Timestamp": "1700000000000",
        "X-Ca-Signature-Headers": "x-ca-timestamp,x-ca-key",
        "X-Ca-Nonce": "not signed",
    }
    # absent Content-MD5 and Date leave no line; signed headers sorted, lower-case; query sorted
    assert string_to_sign("post", headers, "/artemis/api/x?b=2&a=1") == (
        "POST\n*/*\napplication/json\nx-ca-key:29666671\nx-ca-timestamp:1700000000000\n/artemis/api/x?a=1&b=2"
    )


def test_signed_headers_carry_a_verifiable_signature_and_no_secret() -> None:
    body = b'{"pageNo":1}'
    headers = signed_headers("29666671", "empsEmp9uBJNdLxhBbmy", "/artemis/api/x", body)
    assert "empsEmp9uBJNdLxhBbmy" not in "".join(headers.values())
    assert headers["Content-MD5"] == base64.b64encode(hashlib.md5(body).digest()).decode()
    text = string_to_sign("POST", headers, "/artemis/api/x")
    assert text.splitlines()[:4] == [
        "POST",
        "application/json",
        headers["Content-MD5"],
        headers["Content-Type"],
    ]
    expected = hmac.new(b"empsEmp9uBJNdLxhBbmy", text.encode(), hashlib.sha256).digest()
    assert base64.b64decode(headers["X-Ca-Signature"]) == expected


def test_config_check_loads_the_platform_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from zhian.cli.main import main

    example = (Path(__file__).resolve().parents[2] / "config.example.yaml").read_text(encoding="utf-8")
    config = tmp_path / "site.yaml"
    config.write_text(
        example.replace("profile: zhian,", "profile: site-isc, profile_file: isc.yaml,"), "utf-8"
    )
    assert main(["config", "check", "--no-secrets", str(config)]) == 2
    assert "no platform profile 'site-isc'" in capsys.readouterr().err
    (tmp_path / "isc.yaml").write_text(ARTEMIS.replace("video_loss", "fire"), encoding="utf-8")
    assert main(["config", "check", "--no-secrets", str(config)]) == 2
    assert "event_types.131329: unknown alert type 'fire'" in capsys.readouterr().err
    (tmp_path / "isc.yaml").write_text(ARTEMIS, encoding="utf-8")
    assert main(["config", "check", "--no-secrets", str(config)]) == 0
