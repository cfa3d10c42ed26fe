"""Pure judging of the security and ISAPI probes, and the pure parts of the HTTP-side collectors."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collectors.errors import AuthFailed, DeviceRejected
from collectors.http import DecodeError, Refusal, decode_xml
from collectors.isapi import ChannelRecordings, LoginLock, Span
from collectors.isapi_parse import alert_event, decode_status, multipart_parts, parse_time, posix_zone
from collectors.onvif_auth import decode_soap, username_token
from collectors.platform import id_number_valid, mask_personal
from collectors.tlscheck import Certificate, PlainAnswer, TlsReport, name_matches
from probes import isapi_retention, login_lockout, platform_auth, privacy_masking, transport_security
from probes.login_common import Attempt
from probes.targets import Target
from probes.weak_credentials import judge as judge_weak
from probes.weak_credentials import safe_tries

NOW = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
VALID_ID = "11010519491231002X"  # the textbook example of GB 11643
CHECK = "10X98765432"
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


# -- personal data -------------------------------------------------------------------------------


@given(st.text(alphabet="0123456789", min_size=17, max_size=17))
def test_exactly_one_check_character_fits(body: str) -> None:
    fits = [c for c in "0123456789X" if id_number_valid(body + c)]
    assert fits == [CHECK[sum(int(d) * w for d, w in zip(body, WEIGHTS, strict=True)) % 11]]
    assert id_number_valid(body + fits[0].lower())  # a lower-case x is the same check character


def test_id_number_shapes() -> None:
    assert id_number_valid(VALID_ID) and not id_number_valid("110105194912310021")
    assert not id_number_valid("11010519491231002") and not id_number_valid("1101051949123100X2")


def test_masking_hides_every_shape_and_keeps_masked_forms() -> None:
    text = f'{{"id": "{VALID_ID}", "bad": "110105194912310021", "m": 13912345678, "x": "138****5678"}}'
    masked = mask_personal(text)
    assert VALID_ID not in masked and "110105194912310021" not in masked and "13912345678" not in masked
    assert "110105************" in masked and "139********" in masked and "138****5678" in masked
    assert mask_personal("epoch 1777600800.0 ms 1777600800000 serial 12345678901234") == (
        "epoch 1777600800.0 ms 1777600800000 serial 12345678901234"
    )


def test_privacy_scan_and_judge() -> None:
    masked = [{"name": "张*", "id_number": "110101********1234", "mobile": "138****5678"}] * 3
    found = privacy_masking.scan(masked)
    assert (found.records, found.unmasked, found.fields) == (3, 0, ())
    ok = privacy_masking.judge("plat", found, ("x1",), NOW, NOW)
    assert (ok.status, ok.reason) == ("pass", "personal_data_masked")
    leaky: list[dict[str, Any]] = [
        {"id_number": VALID_ID, "contact": {"phones": ["13912345678", 15012345678]}},
        {"id_number": "110105194912310021", "note": f"call 18612345678 or see {VALID_ID}"},
    ]
    found = privacy_masking.scan(leaky)
    assert (found.id_numbers, found.id_like_invalid, found.mobiles) == (2, 1, 3)
    assert found.fields == ("contact.phones", "id_number", "note")
    bad = privacy_masking.judge("plat", found, ("x1",), NOW, NOW)
    assert (bad.status, bad.reason) == ("fail", "personal_data_unmasked")
    assert bad.facts["unmasked_id_numbers"] == 2 and bad.facts["unmasked_mobiles"] == 3
    for value in (VALID_ID, "13912345678", "15012345678", "18612345678"):
        assert value not in repr(bad.facts) + bad.detail
    empty = privacy_masking.judge("plat", privacy_masking.scan([]), ("x1",), NOW, NOW)
    assert (empty.status, empty.reason) == ("not_assessed", "no_records")


# -- credentials -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("max_tries", "candidates", "threshold", "expected"),
    [(3, 5, None, 3), (3, 5, 5, 3), (3, 5, 3, 2), (5, 2, None, 2), (3, 5, 1, 0), (4, 5, 4, 3)],
)
def test_tries_stay_below_the_lockout_threshold(
    max_tries: int, candidates: int, threshold: int | None, expected: int
) -> None:
    assert safe_tries(max_tries, candidates, threshold) == expected


def test_weak_credentials_judge() -> None:
    fail = judge_weak("d", "admin", ["admin"], 3, 5, None, ("e",), NOW, NOW)
    assert (fail.status, fail.reason) == ("fail", "default_credentials_accepted")
    assert fail.detail == "A default password was accepted for user admin."
    assert fail.facts == {"tried_users": ["admin"], "tries": 1, "limit": 3, "lockout_threshold": 5,
                          "accepted_user": "admin"}  # fmt: skip
    ok = judge_weak("d", None, ["admin", "admin"], 2, None, "lockout_near", ("e",), NOW, NOW)
    assert (ok.status, ok.reason, ok.facts["stopped"]) == ("pass", "defaults_refused", "lockout_near")
    none = judge_weak("d", None, [], 0, 1, None, ("e",), NOW, NOW)
    assert (none.status, none.reason) == ("not_assessed", "no_safe_tries")


def _attempt(accepted: bool = False, duration: float = 0.05, **kw: Any) -> Attempt:
    return Attempt(accepted, "x", duration, **kw)


def test_lockout_judges() -> None:
    def settings(enabled: bool, times: int | None) -> tuple[str, str]:
        f = login_lockout.judge_settings("d", LoginLock(enabled, times, 60, "x"), 5, NOW, NOW)
        return f.status, f.reason

    assert settings(True, 5) == ("pass", "lockout_configured")
    assert settings(True, 10) == ("fail", "lockout_lenient")
    assert settings(False, 5) == ("fail", "no_lockout")

    def live(failures: list[Attempt], after: Attempt | None) -> tuple[str, str, dict[str, Any]]:
        f = login_lockout.judge_live("d", failures, after, 2.0, ("x",), NOW, NOW)
        return f.status, f.reason, f.facts

    signalled = [_attempt()] * 4 + [_attempt(locked=True, retry_after_s=60.0)]
    status, reason, facts = live(signalled, None)
    assert (status, reason, facts["locked_after"], facts["retry_after_s"]) == (
        "pass",
        "lockout_enforced",
        5,
        60.0,
    )
    assert live([_attempt()] * 6, _attempt(False))[:2] == ("pass", "lockout_enforced")
    assert live([_attempt()] * 6, _attempt(True))[:2] == ("fail", "no_lockout")
    slowed = [_attempt(duration=0.05)] * 3 + [_attempt(duration=3.0)]
    assert live(slowed, _attempt(True))[:2] == ("pass", "backoff_observed")
    assert live([_attempt(), _attempt(True)], None)[:2] == ("fail", "any_login_accepted")


# -- transport ------------------------------------------------------------------------------------

TARGET = Target("cam", "camera", "onvif", "10.0.0.5", 443, "gate", tls=True)


def _cert(**kw: Any) -> Certificate:
    base: dict[str, Any] = {
        "subject": "CN=cam", "issuer": "CN=site CA", "not_before": NOW - timedelta(days=10),
        "not_after": NOW + timedelta(days=300), "sans": ("10.0.0.5",), "sha256": "ab", "self_signed": False,
    }  # fmt: skip
    return Certificate(**(base | kw))


def _report(**kw: Any) -> TlsReport:
    base: dict[str, Any] = {
        "spoken": True, "version": "TLSv1.3", "cipher": "TLS_AES_256_GCM_SHA384", "certificate": _cert(),
        "verified": True, "verify_error": None, "handshake_error": None, "evidence": ("h1", "h2"),
    }  # fmt: skip
    return TlsReport(**(base | kw))


QUIET = PlainAnswer(False, None, "p1")


def _transport(report: TlsReport, plain: PlainAnswer = QUIET) -> tuple[str, str]:
    f = transport_security.judge(TARGET, report, plain, transport_security.Params(), NOW, NOW)
    assert f.evidence == (*report.evidence, plain.exchange_id)
    return f.status, f.reason


def test_transport_judge() -> None:
    assert _transport(_report()) == ("pass", "tls_ok")
    assert _transport(_report(version="TLSv1.2")) == ("pass", "tls_ok")
    assert _transport(
        _report(spoken=False, certificate=None, verified=False), PlainAnswer(True, 200, "p")
    ) == (
        "fail",
        "plaintext",
    )
    assert _transport(_report(spoken=False, certificate=None, verified=False)) == ("error", "tls_not_spoken")
    assert _transport(_report(), PlainAnswer(True, 401, "p")) == ("fail", "plaintext")
    assert _transport(_report(), PlainAnswer(True, 400, "p")) == ("pass", "tls_ok")  # nginx's telling-off
    assert _transport(_report(version="TLSv1.1", verified=False)) == ("fail", "tls_too_old")
    expired = _report(certificate=_cert(not_after=NOW - timedelta(days=1)), verified=False,
                      verify_error="certificate has expired")  # fmt: skip
    assert _transport(expired) == ("fail", "certificate_invalid")
    assert _transport(_report(certificate=_cert(sans=("10.0.0.6",)))) == ("fail", "certificate_invalid")
    assert _transport(_report(verified=False, verify_error="self-signed")) == ("fail", "certificate_invalid")


def test_name_matches() -> None:
    assert name_matches("10.0.0.5", ("localhost", "10.0.0.5"))
    assert not name_matches("10.0.0.5", ("10.0.0.50", "10.0.0.5.example"))
    assert name_matches("cam1.site.local", ("*.site.local",)) and not name_matches(
        "a.cam1.site.local", ("*.site.local",)
    )
    assert name_matches("Cam1.Site.Local.", ("cam1.site.local",))


# -- platform authentication ----------------------------------------------------------------------


def _auth(without: dict[str, int], with_token: dict[str, int]) -> tuple[str, str, float | None]:
    f = platform_auth.judge("plat", without, with_token, ("x",), NOW, NOW)
    return f.status, f.reason, f.ratio


def test_platform_auth_judge() -> None:
    assert _auth({"GET /a": 401, "POST /b": 403}, {"GET /a": 200}) == (
        "pass",
        "authentication_enforced",
        None,
    )
    assert _auth({"GET /a": 200, "GET /b": 401}, {"GET /a": 200, "GET /b": 200})[:2] == (
        "fail",
        "unauthenticated_access",
    )
    assert _auth({"GET /a": 401, "GET /b": 500}, {"GET /a": 200, "GET /b": 500}) == (
        "partial",
        "refusal_unclear",
        0.5,
    )
    assert _auth({"GET /a": 401, "GET /gone": 404}, {"GET /a": 200, "GET /gone": 404}) == (
        "pass",
        "authentication_enforced",
        None,
    )
    assert _auth({"GET /gone": 404}, {"GET /gone": 404})[:2] == ("not_assessed", "no_routes")


# -- ISAPI retention ------------------------------------------------------------------------------


def _view(
    spans: list[tuple[float, float]], *, complete: bool = True, days: float = 30
) -> isapi_retention.ChannelView:
    """Spans as (days ago start, days ago end)."""
    rec = ChannelRecordings(
        1,
        101,
        tuple(Span(NOW - timedelta(days=a), NOW - timedelta(days=b)) for a, b in spans),
        complete,
        ("s",),
    )
    return isapi_retention.ChannelView(NOW, NOW - timedelta(days=days + 1), rec, ("t", "s"))


def _retention(view: isapi_retention.ChannelView, required: float = 30) -> tuple[str, str, dict[str, Any]]:
    v = isapi_retention.judge_channel("cam", view, required, isapi_retention.Params())
    return v.status, v.reason, v.facts


def test_isapi_retention_judge() -> None:
    status, reason, facts = _retention(_view([(31, 10), (10, 0)]))
    assert (status, reason, facts["observed_days"], facts["gaps"]) == ("pass", "retained", 31.0, [])
    assert _retention(_view([(20, 0)]))[:2] == ("fail", "retention_short")
    status, reason, facts = _retention(_view([(31, 5), (4.75, 0)]))
    assert (status, reason, [g["hours"] for g in facts["gaps"]]) == ("fail", "recording_gap", [6.0])
    assert _retention(_view([(31, 0.5)]))[:2] == ("fail", "recording_gap")  # stopped 12 h ago
    assert _retention(_view([(31, 0.02)]))[:2] == ("pass", "retained")  # the current file, not yet listed
    assert _retention(_view([(31, 35), (36, 0)]))[:2] == ("pass", "retained")  # overlap is no hole
    assert _retention(_view([(31, 30.5), (30.6, 0)]))[:2] == ("pass", "retained")  # a hole before the window
    assert _retention(_view([(31, 0)], complete=False))[:2] == ("error", "search_incomplete")
    assert _retention(_view([]))[:2] == ("fail", "no_recording")


# -- collector pure parts -------------------------------------------------------------------------


def test_isapi_time_and_zone() -> None:
    assert posix_zone("CST-8:00:00") == timezone(timedelta(hours=8))
    assert posix_zone("EST+5") == timezone(timedelta(hours=-5))
    assert posix_zone("nonsense") is None
    china = timezone(timedelta(hours=8))
    assert parse_time("2026-05-01T18:00:00", china) == NOW.replace(hour=10)
    assert parse_time("2026-05-01T10:00:00Z", china) == NOW


def test_multipart_parts_keeps_whole_parts_only() -> None:
    one = (
        b"<EventNotificationAlert><eventType>videoloss</eventType><eventState>inactive</eventState>"
        b"<dateTime>2026-05-01T18:00:00+08:00</dateTime><channelID>1</channelID></EventNotificationAlert>"
    )
    part = b"--boundary\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n\r\n%s\r\n" % (
        len(one),
        one,
    )
    parts, cut = multipart_parts(part * 2 + part[:40], "boundary")
    assert len(parts) == 2 and cut
    event = alert_event(*parts[0], timezone(timedelta(hours=8)))
    assert event is not None and event.heartbeat and event.time == NOW and event.channel == 1
    parts, cut = multipart_parts(part + b"--boundary--\r\n", "boundary")
    assert len(parts) == 1 and not cut
    assert alert_event("application/json", b"[1]", UTC) is None


def test_decoders_turn_refusals_into_typed_errors() -> None:
    ok = (
        b'<ResponseStatus xmlns="urn:x"><statusCode>1</statusCode>'
        b"<subStatusCode>ok</subStatusCode></ResponseStatus>"
    )
    assert decode_status(ok).tag == "ResponseStatus"
    with pytest.raises(Refusal) as refused:
        decode_status(ok.replace(b">1<", b">6<").replace(b">ok<", b">badParameters<"))
    assert refused.value.error is DeviceRejected and refused.value.extra == {"code": "badParameters"}
    with pytest.raises(DecodeError):
        decode_xml(b"<half")
    fault = (
        b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><s:Fault><s:Code>'
        b"<s:Value>s:Sender</s:Value><s:Subcode><s:Value>ter:NotAuthorized</s:Value></s:Subcode></s:Code>"
        b"<s:Reason><s:Text>no</s:Text></s:Reason></s:Fault></s:Body></s:Envelope>"
    )
    with pytest.raises(Refusal) as denied:
        decode_soap(fault)
    assert denied.value.error is AuthFailed
    with pytest.raises(Refusal) as other:
        decode_soap(fault.replace(b"ter:NotAuthorized", b"ter:ActionNotSupported"))
    assert other.value.error is DeviceRejected and other.value.extra == {"code": "ter:ActionNotSupported"}


def test_username_token_digest() -> None:
    """PasswordDigest = Base64(SHA-1(nonce + created + password)), the UsernameToken profile's rule."""
    nonce, created = bytes(range(16)), "2026-05-01T10:00:00.123Z"
    header = username_token("admin", "secret-pass", datetime(2026, 5, 1, 10, 0, 0, 123000, tzinfo=UTC), nonce)
    digest = base64.b64encode(hashlib.sha1(nonce + created.encode() + b"secret-pass").digest()).decode()
    encoded = base64.b64encode(nonce).decode()
    assert f"<wsu:Created>{created}</wsu:Created>" in header and f'#PasswordDigest">{digest}<' in header
    assert f">{encoded}</wsse:Nonce>" in header and "secret-pass" not in header
