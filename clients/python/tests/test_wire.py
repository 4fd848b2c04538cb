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
        ("request_unlock_token", _wire.unlock(token="fido2-c47a10dc", pin="4321")),
    ],
)
def test_requests_are_the_agents_golden_frames_byte_for_byte(name: str, msg: dict) -> None:
    assert _wire.encode(msg) == golden(name)


def test_one_key_name_given_alone_is_refused_not_sent_as_its_letters() -> None:
    with pytest.raises(TypeError, match=r"pass \[name\]"):
        _wire.unlock("bn")
    assert _wire.unlock(["bn"])["keys"] == ["bn"]


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
    anchored = tapsign.Status.from_wire(decode_frame(golden("response_status_anchored")))
    assert anchored.audit_head == {"seq": 412, "hash": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}
    assert anchored.keystore["generation"] == 7 and anchored.changed_keys == []
    assert locked.audit_head is None and locked.keystore is None
    changed = tapsign.Status.from_wire({"type": "status", "state": "locked", "agent": "tapsign 0.1.0", "changed_keys": ["k1"]})
    assert changed.changed_keys == ["k1"]
    signed = tapsign.SignedRequest.from_wire(decode_frame(golden("response_signed_headers")))
    assert signed.headers and signed.url("https://h/") == "https://h" + signed.path + ("?" + signed.query if signed.query else "")
    event = tapsign.Event.from_wire(decode_frame(golden("response_event_locked")))
    assert (event.event, event.code, event.reason) == ("locked", "locked", "screen locked (logind Session.Lock)")
    expiring = tapsign.Event.from_wire(decode_frame(golden("response_event_expiring")))
    assert expiring.expires_in_secs == 300 and expiring.signatures_left == 120
    assert decode_frame(golden("response_locked")) == {"type": "locked"}
    assert decode_frame(golden("response_subscribed")) == {"type": "subscribed"}


@pytest.mark.parametrize("name", ["response_status_locked", "response_status_unlocked", "response_status_anchored", "response_unlocked"])
def test_every_status_field_the_agent_sends_is_an_attribute(name: str) -> None:
    # A field the agent's Status gains (docs/protocol.md) must not be reachable only by `raw`.
    msg = decode_frame(golden(name))
    status = tapsign.Status.from_wire(msg, msg["type"])
    for key, value in msg.items():
        if key != "type":
            assert getattr(status, key) == value, key


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


# ---------------------------------------------------------------- which request an answer is for

HEX = "ab49a552077a94d691d8775442963d0c6f390bdc72854cbb2aed02feff5a1c7b"
ED = "Zm9v" * 21 + "%2B%2F%3D%3D"  # 86 base64 characters and `==`, percent-encoded
ORDER = "symbol=BTCUSDT&side=BUY&quantity=1"
DEADLINE = "2026-12-06T18:10:30Z"
DEADLINE_FORM = DEADLINE.replace(":", "%3A")


def answer(method: str, path: str, query: str, body: str, headers: "dict | None" = None) -> tapsign.SignedRequest:
    return tapsign.SignedRequest(method, path, query, body, {"X-Fake": "k"} if headers is None else headers)


# (request: method, path, query, body; the answer's query and body), as agent/src/sign/*.rs
# returns them.
THE_AGENTS_ANSWERS = [
    # Unchanged: every exchange but Binance and Kraken signs in headers.
    (("GET", "/v5/order/realtime", "category=linear", ""), ("category=linear", "")),
    (("POST", "/api/v5/trade/order", "", '{"instId":"BTC-USDT"}'), ("", '{"instId":"BTC-USDT"}')),
    # Binance: appended to the body when there is one, else to the query.
    (("GET", "/api/v3/openOrders", "symbol=BTCUSDT", ""),
     (f"symbol=BTCUSDT&timestamp=1795600000000&signature={HEX}", "")),
    (("GET", "/api/v3/account", "", ""), (f"timestamp=1&signature={HEX}", "")),
    (("POST", "/api/v3/order", "", ORDER), ("", f"{ORDER}&timestamp=1&signature={ED}")),
    (("POST", "/api/v3/order", "a=1", ORDER), ("a=1", f"{ORDER}&recvWindow=3000&timestamp=1&signature={HEX}")),
    # ... recvWindow only when the bot sent none, timestamp exactly when it sent none.
    (("POST", "/api/v3/order", "", ORDER + "&recvWindow=2000"), ("", f"{ORDER}&recvWindow=2000&timestamp=1&signature={HEX}")),
    (("POST", "/api/v3/order", "", ORDER + "&%54imestamp=1"), ("", f"{ORDER}&%54imestamp=1&signature={HEX}")),
    # Kraken: POST without a query, the nonce first in the body.
    (("POST", "/0/private/Balance", "", ""), ("", "nonce=17")),
    (("POST", "/0/private/CancelOrder", "", "txid=O1"), ("", "nonce=17&txid=O1")),
    (("POST", "/0/private/CancelOrderBatch", "", '{"orders":["O1"]}'), ("", '{"nonce":"17","orders":["O1"]}')),
    (("POST", "/0/private/CancelOrderBatch", "", ' \n{ "orders":["O1"]} '), ("", '{"nonce":"17","orders":["O1"]} ')),
    (("POST", "/0/private/Balance", "", "{ }"), ("", '{"nonce":"17"}')),
    # ... and on an order method, the agent's deadline after it, unless the bot sent its own.
    (("POST", "/0/private/AddOrder", "", "pair=XBTUSD"), ("", f"nonce=17&deadline={DEADLINE_FORM}&pair=XBTUSD")),
    (("POST", "/0/private/EditOrder", "", ""), ("", f"nonce=17&deadline={DEADLINE_FORM}")),
    (("POST", "/0/private/AmendOrder", "", '{"txid":"O1"}'), ("", f'{{"nonce":"17","deadline":"{DEADLINE}","txid":"O1"}}')),
    (("POST", "/0/private/AmendOrder", "", "{}"), ("", f'{{"nonce":"17","deadline":"{DEADLINE}"}}')),
    (("POST", "/0/private/AddOrderBatch", "", '{"orders":[]}'), ("", f'{{"nonce":"17","deadline":"{DEADLINE}","orders":[]}}')),
    (("POST", "/0/private/AddOrder", "", f"pair=XBTUSD&deadline={DEADLINE}"), ("", f"nonce=17&pair=XBTUSD&deadline={DEADLINE}")),
    (("POST", "/0/private/AmendOrder", "", f'{{"deadline":"{DEADLINE}"}}'), ("", f'{{"nonce":"17","deadline":"{DEADLINE}"}}')),
]


@pytest.mark.parametrize("sent, got", THE_AGENTS_ANSWERS, ids=[f"{s[1]} {s[2]!r} {s[3]!r}" for s, _ in THE_AGENTS_ANSWERS])
def test_the_agents_answer_to_a_request_is_taken(sent: tuple, got: tuple) -> None:
    _wire.check_answers(_wire.sign("k", *sent), answer(sent[0], sent[1], *got))


def test_the_golden_answer_answers_the_golden_request() -> None:
    sent = decode_frame(golden("request_sign_get_query"))
    _wire.SignedRequest.from_wire(decode_frame(golden("response_signed_headers")), sent)


# Answers to other requests: what a connection out of step (shared by forked processes) reads.
ANOTHER_REQUESTS = [
    (("POST", "/api/v3/order", "", ORDER), ("GET", "/api/v3/order", "", ORDER)),
    (("POST", "/api/v3/order", "", ORDER), ("POST", "/api/v3/openOrders", "", ORDER)),
    (("GET", "/v5/order/realtime", "category=linear", ""), ("GET", "/v5/order/realtime", "category=spot", "")),
    (("POST", "/api/v5/trade/order", "", '{"side":"buy"}'), ("POST", "/api/v5/trade/order", "", '{"side":"sell"}')),
    # Binance: another order, signed; the bot's order with a parameter more; in the wrong part.
    (("POST", "/api/v3/order", "", ORDER), ("POST", "/api/v3/order", "", f"{ORDER[:-1]}2&timestamp=1&signature={HEX}")),
    (("POST", "/api/v3/order", "", ORDER), ("POST", "/api/v3/order", "", f"{ORDER}&price=1&timestamp=1&signature={HEX}")),
    (("POST", "/api/v3/order", "", ORDER), ("POST", "/api/v3/order", f"timestamp=1&signature={HEX}", ORDER)),
    (("POST", "/api/v3/order", "", ORDER), ("POST", "/api/v3/order", "", f"{ORDER}&timestamp=1&signature={HEX[:-1]}")),
    # ... a timestamp the agent would not have added, or left out.
    (("POST", "/api/v3/order", "", ORDER + "&timestamp=1"), ("POST", "/api/v3/order", "", f"{ORDER}&timestamp=1&timestamp=2&signature={HEX}")),
    (("POST", "/api/v3/order", "", ORDER), ("POST", "/api/v3/order", "", f"{ORDER}&signature={HEX}")),
    (("POST", "/api/v3/order", "", ORDER + "&recvWindow=1"), ("POST", "/api/v3/order", "", f"{ORDER}&recvWindow=1&recvWindow=2&timestamp=1&signature={HEX}")),
    # Kraken: another body after the nonce, or a nonce that is not one.
    (("POST", "/0/private/CancelOrder", "", "txid=O1"), ("POST", "/0/private/CancelOrder", "", "nonce=17&txid=O2")),
    (("POST", "/0/private/CancelOrder", "", "txid=O1"), ("POST", "/0/private/CancelOrder", "", "nonce=x&txid=O1")),
    (("POST", "/0/private/CancelOrderBatch", "", '{"orders":["O1"]}'), ("POST", "/0/private/CancelOrderBatch", "", '{"nonce":"17","orders":["O2"]}')),
    # ... an order without the deadline the agent stamps, one where the bot sent its own, or
    # one on a method that takes none.
    (("POST", "/0/private/AddOrder", "", "pair=XBTUSD"), ("POST", "/0/private/AddOrder", "", "nonce=17&pair=XBTUSD")),
    (("POST", "/0/private/AmendOrder", "", '{"txid":"O1"}'), ("POST", "/0/private/AmendOrder", "", '{"nonce":"17","txid":"O1"}')),
    (("POST", "/0/private/AddOrder", "", f"deadline={DEADLINE}"), ("POST", "/0/private/AddOrder", "", f"nonce=17&deadline={DEADLINE_FORM}&deadline={DEADLINE}")),
    (("POST", "/0/private/CancelOrder", "", "txid=O1"), ("POST", "/0/private/CancelOrder", "", f"nonce=17&deadline={DEADLINE_FORM}&txid=O1")),
    (("POST", "/0/private/AddOrder", "", "pair=XBTUSD"), ("POST", "/0/private/AddOrder", "", "nonce=17&deadline=2026-12-06T18:10:30Z&pair=XBTUSD")),
]


@pytest.mark.parametrize("sent, got", ANOTHER_REQUESTS, ids=[f"{g[0]} {g[1]} {g[2]!r} {g[3]!r}" for _, g in ANOTHER_REQUESTS])
def test_an_answer_to_another_request_is_a_protocol_error(sent: tuple, got: tuple) -> None:
    with pytest.raises(tapsign.ProtocolError) as raised:
        _wire.check_answers(_wire.sign("k", *sent), answer(*got))
    assert "not the answer to this request" in str(raised.value)


def test_a_ws_login_answer_has_no_query_and_no_headers() -> None:
    sent = _wire.sign("k", "GET", "/v5/private", kind="ws_login")
    _wire.check_answers(sent, answer("GET", "/v5/private", "", '{"op":"auth","args":[]}', {}))
    for got in (answer("GET", "/v5/private", "a=1", "{}", {}), answer("GET", "/v5/private", "", "{}"),
                answer("GET", "/realtime", "", "{}", {})):
        with pytest.raises(tapsign.ProtocolError):
            _wire.check_answers(sent, got)
