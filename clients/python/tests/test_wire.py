"""Frames and messages against the agent's own golden frames (proto/tests/golden/), and the
error classes against the stable codes in proto/src/error.rs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import tapsign
from tapsign import _wire, errors
from agentworld import REPO

GOLDEN = REPO / "proto" / "tests" / "golden"


def golden(name: str) -> bytes:
    return (GOLDEN / f"{name}.frame").read_bytes()


@pytest.mark.parametrize(
    "name, msg",
    [
        ("request_hello", _wire.hello("mybot/1.2")),
        ("request_status", {"type": "status"}),
        ("request_lock", {"type": "lock"}),
        ("request_subscribe", {"type": "subscribe"}),
        ("request_sign_get_query", _wire.sign("binance-spot", "GET", "/api/v3/openOrders", "symbol=BTCUSDT")),
        ("request_sign_post_body", _wire.sign("upbit-main", "POST", "/v1/orders", "",
                                              '{"market":"KRW-BTC","side":"bid","price":"5000","ord_type":"price"}')),
        ("request_unlock_defaults", _wire.unlock()),
        ("request_unlock_extend", _wire.unlock(ttl_secs=3600, extend=True)),
        ("request_unlock_full", _wire.unlock(["upbit-main", "binance-spot"], 3600, 600, 500, "123456")),
    ],
)
def test_requests_are_the_agents_golden_frames_byte_for_byte(name: str, msg: dict) -> None:
    assert _wire.encode(msg) == golden(name)


def test_ws_login_kind_is_sent_and_rest_is_left_out() -> None:
    assert "kind" not in _wire.sign("k", "GET", "/")
    assert _wire.sign("k", "GET", "/ws", kind="ws_login")["kind"] == "ws_login"
    with pytest.raises(tapsign.BadRequest):
        _wire.sign("k", "GET", "/", kind="websocket")


def decode_frame(frame: bytes) -> dict:
    return _wire.decode(frame[4:4 + _wire.body_len(frame[:4])])


def wire_codes() -> set:
    """The codes `ErrorCode::as_str` spells, read from the Rust source."""
    src = (REPO / "proto" / "src" / "error.rs").read_text()
    return set(re.findall(r'ErrorCode::\w+ => "(\w+)"', src))


def test_one_error_class_per_stable_code() -> None:
    codes = wire_codes()
    assert len(codes) >= 15
    assert set(errors.BY_CODE) == codes
    classes = list(errors.BY_CODE.values())
    assert len(set(classes)) == len(classes), "one class per code"
    for cls in classes:
        assert issubclass(cls, tapsign.TapsignError)
        assert getattr(tapsign, cls.__name__) is cls, "exported from the package"


@pytest.mark.parametrize("code", sorted(wire_codes()))
def test_each_error_frame_raises_its_class_with_the_agents_message(code: str) -> None:
    with pytest.raises(errors.BY_CODE[code]) as raised:
        decode_frame(golden(f"response_error_{code}"))
    assert raised.value.code == code
    assert raised.value.message == f"example {code} message"
    assert code in str(raised.value)


def test_an_unknown_code_is_treated_as_internal_and_keeps_its_name() -> None:
    with pytest.raises(tapsign.Internal) as raised:
        _wire.decode(b'{"type":"error","code":"on_fire","message":"m"}')
    assert raised.value.code == "on_fire"


def test_groups_let_a_bot_catch_no_session_at_once() -> None:
    for cls in (tapsign.Locked, tapsign.Expired, tapsign.BudgetExhausted):
        assert issubclass(cls, tapsign.NoSession)
    for cls in (tapsign.PolicyDenied, tapsign.UnknownKey, tapsign.BadRequest):
        assert issubclass(cls, tapsign.Refused)
    for cls in (tapsign.TokenAbsent, tapsign.WrongToken, tapsign.TouchTimeout, tapsign.PinInvalid):
        assert issubclass(cls, tapsign.TokenError)


def test_answers_decode_from_golden_frames() -> None:
    assert _wire.check_hello(decode_frame(golden("response_hello"))) == "tapsign 0.1.0"
    locked = tapsign.Status.from_wire(decode_frame(golden("response_status_locked")))
    assert not locked.unlocked and locked.session is None
    unlocked = tapsign.Status.from_wire(decode_frame(golden("response_status_unlocked")))
    assert unlocked.unlocked and unlocked.session["signatures_left"] >= 0
    tapsign.Status.from_wire(decode_frame(golden("response_unlocked")), "unlocked")
    signed = tapsign.SignedRequest.from_wire(decode_frame(golden("response_signed_headers")))
    assert signed.headers and signed.url("https://h/") == "https://h" + signed.path + ("?" + signed.query if signed.query else "")
    event = tapsign.Event.from_wire(decode_frame(golden("response_event_locked")))
    assert (event.event, event.code, event.reason) == ("locked", "locked", "screen locked (logind Session.Lock)")
    expiring = tapsign.Event.from_wire(decode_frame(golden("response_event_expiring")))
    assert expiring.expires_in_secs == 300 and expiring.signatures_left == 120
    assert decode_frame(golden("response_locked")) == {"type": "locked"}
    assert decode_frame(golden("response_subscribed")) == {"type": "subscribed"}


def test_a_frame_over_64_kib_is_refused_before_it_is_read() -> None:
    with pytest.raises(tapsign.ProtocolError):
        _wire.body_len(golden("reject_oversized_length")[:4])


def test_a_request_over_64_kib_is_refused_before_it_is_sent() -> None:
    with pytest.raises(tapsign.BadRequest) as raised:
        _wire.encode(_wire.sign("k", "POST", "/", body="x" * (64 * 1024)))
    assert "64" in str(raised.value) or "65536" in str(raised.value)


def test_a_version_other_than_1_is_refused() -> None:
    with pytest.raises(tapsign.VersionMismatch):
        _wire.check_hello({"type": "hello", "version": 2, "agent": "future"})


def test_signed_url_joins_without_a_question_mark_when_there_is_no_query() -> None:
    s = tapsign.SignedRequest("GET", "/v1/accounts", "", "", {})
    assert s.url("https://api.upbit.com") == "https://api.upbit.com/v1/accounts"
    s = tapsign.SignedRequest("GET", "/v1/orders", "market=KRW-BTC&states[]=wait", "", {})
    assert s.url("https://api.upbit.com/") == "https://api.upbit.com/v1/orders?market=KRW-BTC&states[]=wait"
