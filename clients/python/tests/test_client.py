"""The blocking client: against a real agent for what a bot sees, and against a scripted fake
(fakeagent.py) for dropped connections, late answers and refusals."""

from __future__ import annotations

import calendar
import hashlib
import json
import re
import struct
import threading
import time
from typing import Any, List

import pytest

import creds
import diffkit
import fakeagent
import tapsign
from agentworld import World
from fakeagent import Conn, FakeAgent, always_drop, busy_at_once, close_after_first_request, drop_first_sign, slow_first_answer, using


# ---------------------------------------------------------------- against the real agent


def test_hello_status_sign_against_the_agent(agent: tapsign.Agent) -> None:
    assert agent.hello().startswith("tapsign")
    status = agent.status()
    assert status.unlocked and status.agent.startswith("tapsign")
    assert any(k["name"] == "binance-main" for k in status.session["keys"])
    signed = agent.sign("binance-main", "GET", "/api/v3/openOrders", query="symbol=BTCUSDT")
    payload, sig = signed.query.rsplit("&signature=", 1)
    assert payload.startswith("symbol=BTCUSDT&timestamp=")
    assert sig == diffkit.hmac_hex(creds.BINANCE[1].encode(), payload.encode(), hashlib.sha256)
    assert signed.headers == {"X-MBX-APIKEY": creds.BINANCE[0]}
    assert signed.url("https://api.binance.com") == f"https://api.binance.com/api/v3/openOrders?{signed.query}"


def test_refusals_are_their_classes(agent: tapsign.Agent) -> None:
    with pytest.raises(tapsign.PolicyDenied) as denied:
        agent.sign("binance-main", "POST", "/sapi/v1/capital/withdraw/apply", body="coin=BTC&amount=1")
    assert "withdraw" in denied.value.message
    with pytest.raises(tapsign.UnknownKey):
        agent.sign("no-such-key", "GET", "/api/v3/account")
    with pytest.raises(tapsign.BadRequest):
        agent.sign("binance-main", "get", "/api/v3/account")
    # The connection survives a refusal.
    assert agent.status().unlocked


def test_lock_ends_signing_and_unlock_opens_it_again(fresh_world: World) -> None:
    a = tapsign.Agent(fresh_world.sock)
    a.sign("binance-main", "GET", "/api/v3/account")
    a.lock()
    status = a.status()
    assert not status.unlocked and status.session is None
    with pytest.raises(tapsign.Locked) as locked:
        a.sign("binance-main", "GET", "/api/v3/account")
    assert isinstance(locked.value, tapsign.NoSession)
    a.lock()  # a no-op when locked
    opened = a.unlock(max_signatures=3, timeout=30)
    assert opened.unlocked and opened.session["signatures_left"] == 3
    for _ in range(3):
        a.sign("binance-main", "GET", "/api/v3/account")
    with pytest.raises(tapsign.NoSession) as spent:
        a.sign("binance-main", "GET", "/api/v3/account")
    assert spent.value.code in ("budget_exhausted", "locked")


def test_unlock_with_an_empty_list_of_keys_is_refused_not_every_key(fresh_world: World) -> None:
    """Red-team round 20: ``unlock(keys=[])`` dropped the empty list, so the agent opened every
    key: a bot whose computed list came up empty got the widest session. The list is sent, and
    the agent refuses it; left out, ``keys`` still means every key."""
    a = tapsign.Agent(fresh_world.sock)
    a.lock()
    with pytest.raises(tapsign.BadRequest, match="name at least one key"):
        a.unlock(keys=[], ttl_secs=600, timeout=30)
    assert not a.status().unlocked
    opened = a.unlock(timeout=30)
    assert [k["name"] for k in opened.session["keys"]] == ["binance-main"]


def test_events_follow_the_session(fresh_world: World) -> None:
    a = tapsign.Agent(fresh_world.sock)
    stream = a.events(timeout=20)
    got: List[tapsign.Event] = []

    def collect() -> None:
        for event in stream:
            got.append(event)
            if len(got) == 2:
                return

    t = threading.Thread(target=collect)
    t.start()
    time.sleep(0.3)  # subscribed before the session changes
    fresh_world.run(["lock"])
    fresh_world.unlock()
    t.join(20)
    assert [e.event for e in got] == ["locked", "unlocked"]
    assert got[0].code == "locked" and got[0].message
    assert got[1].expires_in_secs and got[1].signatures_left


def test_a_shared_agent_is_thread_safe(agent: tapsign.Agent) -> None:
    failures: List[str] = []

    def worker(n: int) -> None:
        for i in range(20):
            query = f"symbol=T{n}X{i}"
            try:
                s = agent.sign("binance-main", "GET", "/api/v3/openOrders", query=query)
            except Exception as e:  # noqa: BLE001 - collected and reported below
                failures.append(repr(e))
                return
            payload, sig = s.query.rsplit("&signature=", 1)
            if not payload.startswith(query + "&timestamp="):
                failures.append(f"thread {n} got another request's answer: {s.query}")
            if sig != diffkit.hmac_hex(creds.BINANCE[1].encode(), payload.encode()):
                failures.append(f"bad signature for {payload}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert failures == []


def test_no_agent_is_agent_not_running(tmp_path: Any) -> None:
    with pytest.raises(tapsign.AgentNotRunning) as raised:
        tapsign.Agent(str(tmp_path / "none.sock")).status()
    assert "tapsign agent" in str(raised.value)
    # A socket file nobody listens on (an agent that died) is the same.
    import socket

    stale = tmp_path / "stale.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(stale))
    s.close()
    with pytest.raises(tapsign.AgentNotRunning):
        tapsign.Agent(str(stale)).status()


def test_connect_failures_are_tapsign_errors(tmp_path: Any, monkeypatch: Any) -> None:
    # A path too long for a Unix socket, a file where a folder should be: no agent there, and
    # the reason is in the message (not a bare OSError).
    too_long = str(tmp_path / ("x" * 200) / "agent.sock")
    with pytest.raises(tapsign.AgentNotRunning) as raised:
        tapsign.Agent(too_long).status()
    assert "too long" in str(raised.value) and "tapsign agent" in str(raised.value)
    afile = tmp_path / "afile"
    afile.write_text("")
    with pytest.raises(tapsign.AgentNotRunning) as raised:
        tapsign.Agent(str(afile / "agent.sock")).sign("k", "GET", "/x")
    assert "Not a directory" in str(raised.value)
    # A connect that times out is AgentTimeout.
    import socket

    def slow_connect(self: Any, address: Any) -> None:
        raise socket.timeout("timed out")

    monkeypatch.setattr(socket.socket, "connect", slow_connect)
    with pytest.raises(tapsign.AgentTimeout) as timed_out:
        tapsign.Agent(str(tmp_path / "agent.sock"), timeout=0.5).status()
    assert "0.5 s" in str(timed_out.value)


# ---------------------------------------------------------------- against the fake


@using(close_after_first_request)
def test_reconnects_after_the_agent_closed_an_idle_connection(fake: FakeAgent) -> None:
    a = tapsign.Agent(fake.path)
    a.sign("k", "GET", "/one")
    time.sleep(0.2)  # the fake has closed connection 0
    assert a.sign("k", "GET", "/two").path == "/two"
    assert fake.connections == 2
    assert [m["path"] for m in fake.requests("sign")] == ["/one", "/two"], "nothing sent twice"


@using(drop_first_sign)
def test_sign_is_retried_once_on_a_new_connection(fake: FakeAgent) -> None:
    a = tapsign.Agent(fake.path)
    assert a.sign("k", "GET", "/order").path == "/order"
    assert len(fake.requests("sign")) == 2
    assert fake.connections == 2


@using(drop_first_sign)
def test_status_and_lock_are_retried_too(fake: FakeAgent) -> None:
    a = tapsign.Agent(fake.path)
    a.lock()
    assert len(fake.requests("lock")) == 2


@using(drop_first_sign)
def test_unlock_is_never_retried(fake: FakeAgent) -> None:
    a = tapsign.Agent(fake.path)
    with pytest.raises(tapsign.ConnectionLost):
        a.unlock(pin="123456", timeout=5)
    assert len(fake.requests("unlock")) == 1


@using(always_drop)
def test_a_second_drop_is_connection_lost(fake: FakeAgent) -> None:
    a = tapsign.Agent(fake.path)
    with pytest.raises(tapsign.ConnectionLost):
        a.sign("k", "GET", "/x")
    assert len(fake.requests("sign")) == 2, "one retry, no more"


@using(busy_at_once)
def test_busy_is_read_even_when_the_write_failed(fake: FakeAgent) -> None:
    with pytest.raises(tapsign.Busy) as raised:
        tapsign.Agent(fake.path).status()
    assert "64 connections" in raised.value.message


@using(slow_first_answer)
def test_a_timeout_never_hands_a_late_answer_to_the_next_request(fake: FakeAgent) -> None:
    a = tapsign.Agent(fake.path, timeout=1.0)
    with pytest.raises(tapsign.AgentTimeout):
        a.sign("k", "GET", "/first")
    assert isinstance(tapsign.AgentTimeout("x"), TimeoutError)
    assert a.sign("k", "GET", "/second").path == "/second"


def hello_from_the_future(conn: Conn, n: int) -> None:
    conn.read()
    conn.send({"type": "error", "code": "version_mismatch", "message": "this agent speaks version 2"})


@using(hello_from_the_future)
def test_version_mismatch_on_hello(fake: FakeAgent) -> None:
    with pytest.raises(tapsign.VersionMismatch):
        tapsign.Agent(fake.path).status()


def refuse_pin(conn: Conn, n: int) -> None:
    conn.hello()
    conn.read()
    conn.send({"type": "error", "code": "pin_invalid", "message": "the token refused the PIN (2 tries left)"})


@using(refuse_pin)
def test_the_pin_is_sent_once_and_never_shown(fake: FakeAgent, caplog: Any) -> None:
    pin = "73915562"
    a = tapsign.Agent(fake.path)
    with pytest.raises(tapsign.PinInvalid) as raised:
        a.unlock(pin=pin)
    assert fake.requests("unlock") == [{"type": "unlock", "pin": pin}]
    shown = str(raised.value) + repr(raised.value) + repr(a) + repr(vars(a)) + caplog.text
    assert pin not in shown


def sends_a_huge_frame(conn: Conn, n: int) -> None:
    conn.hello()
    conn.read()
    conn.sock.sendall((70_000).to_bytes(4, "big"))


@using(sends_a_huge_frame)
def test_an_oversized_answer_is_a_protocol_error(fake: FakeAgent) -> None:
    with pytest.raises(tapsign.ProtocolError):
        tapsign.Agent(fake.path).status()


@using(fakeagent.serve_forever)
def test_a_request_over_the_frame_limit_is_not_sent(fake: FakeAgent) -> None:
    a = tapsign.Agent(fake.path)
    with pytest.raises(tapsign.BadRequest):
        a.sign("k", "POST", "/", body="x" * 70_000)
    assert fake.requests("sign") == []


@using(fakeagent.serve_forever)
def test_one_connection_serves_every_call_when_its_descriptor_is_above_1023(fake: FakeAgent, high_fds: None) -> None:
    """Red-team round 20: the stale-connection check used ``select``, which refuses a
    descriptor of 1024 or more; taken as "stale", the client reconnected (connect, peer check,
    hello) before every request of a bot with that many files open."""
    a = tapsign.Agent(fake.path)
    try:
        for i in range(5):
            a.sign("k", "GET", f"/p{i}")
        assert a._sock is not None and a._sock.fileno() >= 1024
    finally:
        a.close()
    assert fake.connections == 1


@using(fakeagent.serve_forever)
def test_threads_never_interleave_frames(fake: FakeAgent) -> None:
    a = tapsign.Agent(fake.path)
    errors: List[str] = []

    def worker(n: int) -> None:
        for i in range(50):
            path = f"/t{n}/{i}"
            got = a.sign(f"key{n}", "POST", path, body="y" * (1000 * (n + 1)))
            if got.path != path or got.headers != {"X-Fake": f"key{n}"}:
                errors.append(f"{path}: {got.path}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert fake.connections == 1
    assert len(fake.requests("sign")) == 300


def mute_after_hello_read(conn: Conn, n: int) -> None:
    """Reads hello and never answers."""
    conn.read()
    time.sleep(3)


@using(mute_after_hello_read)
def test_an_unanswered_hello_is_agent_timeout(fake: FakeAgent) -> None:
    started = time.monotonic()
    with pytest.raises(tapsign.AgentTimeout):
        tapsign.Agent(fake.path, timeout=0.5).status()
    assert time.monotonic() - started < 2


def trickle(conn: Conn, n: int) -> None:
    """Answers status one byte every 0.25 s: each read gets a byte well within any timeout."""
    conn.hello()
    if conn.read() is None:
        return
    body = json.dumps({"type": "status", "state": "locked", "agent": "fake 0", "tokens": []}).encode()
    for b in struct.pack(">I", len(body)) + body:
        try:
            conn.sock.sendall(bytes([b]))
        except OSError:
            return
        time.sleep(0.25)


@using(trickle)
def test_the_timeout_bounds_the_whole_answer_not_each_read(fake: FakeAgent) -> None:
    a = tapsign.Agent(fake.path, timeout=1.0)
    started = time.monotonic()
    with pytest.raises(tapsign.AgentTimeout):
        a.status()
    assert time.monotonic() - started < 2.5, "one deadline for the whole answer"


BAD_SIGNED = [
    {"path": "@evil.example/x"},
    {"path": "api/v3/order"},
    {"path": ""},
    {"query": None},
    {"body": None},
    {"method": 1},
    {"headers": {"X-Fake": None}},
    {"headers": {"X-Fake": 5}},
    {"headers": []},
]


@pytest.mark.parametrize("fake", [fakeagent.answers_with(bad) for bad in BAD_SIGNED], indirect=True,
                         ids=[json.dumps(bad) for bad in BAD_SIGNED])
def test_a_signed_answer_that_cannot_be_sent_as_it_is_is_a_protocol_error(fake: FakeAgent) -> None:
    with pytest.raises(tapsign.ProtocolError):
        tapsign.Agent(fake.path).sign("k", "GET", "/api/v3/order", "a=1")


@using(fakeagent.answers_with({}))
def test_a_well_formed_signed_answer_is_taken_as_it_is(fake: FakeAgent) -> None:
    s = tapsign.Agent(fake.path).sign("k", "GET", "/api/v3/order", "a=1")
    assert (s.method, s.path, s.query, s.body, s.headers) == ("GET", "/api/v3/order", "a=1", "", {"X-Fake": "k"})


@using(fakeagent.extra_frame_after_first_answer)
def test_bytes_nobody_asked_for_make_the_next_request_reconnect(fake: FakeAgent) -> None:
    a = tapsign.Agent(fake.path)
    assert a.sign("k", "GET", "/first").path == "/first"
    time.sleep(0.2)
    assert a.sign("k", "GET", "/second").path == "/second"
    assert fake.connections == 2


@using(fakeagent.answers_another_request)
def test_an_answer_to_another_request_is_a_protocol_error_and_closes_the_connection(fake: FakeAgent) -> None:
    a = tapsign.Agent(fake.path)
    order = "symbol=BTCUSDT&side=BUY&quantity=1"
    with pytest.raises(tapsign.ProtocolError) as raised:
        a.sign("k", "POST", "/api/v3/order", body=order)
    assert "side=SELL" in str(raised.value) and "not the answer to this request" in str(raised.value)
    assert a.sign("k", "POST", "/api/v3/order", body=order).body == order
    assert fake.connections == 2, "the next request went on a new connection"


def test_the_agents_answers_are_its_requests_answers(fresh_world: World) -> None:
    # What agent/src/sign/*.rs adds and where, as the answer check expects it (tests/test_wire.py
    # has the shapes): Binance's recvWindow under a cap below 5000, and after a bot's own
    # timestamp only the signature; Kraken's nonce first in a form body and a JSON one.
    fresh_world.stop()
    fresh_world.config("[signing]\nrecv_window_cap_ms = 3000\n")
    fresh_world.add_key("kraken-main", "kraken", creds.KRAKEN)
    fresh_world.start()
    fresh_world.unlock()
    a = tapsign.Agent(fresh_world.sock)
    order = "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1"
    s = a.sign("binance-main", "POST", "/api/v3/order", body=order)
    assert s.body.startswith(order + "&recvWindow=3000&timestamp=")
    stamped = f"{order}&recvWindow=2000&timestamp={int(time.time() * 1000)}"
    assert a.sign("binance-main", "POST", "/api/v3/order", body=stamped).body.startswith(stamped + "&signature=")
    assert a.sign("kraken-main", "POST", "/0/private/CancelOrderBatch", body='{"orders":["O1"]}').body.startswith('{"nonce":"')
    assert a.sign("kraken-main", "POST", "/0/private/CancelOrder", body="txid=O1").body.startswith("nonce=")
    # ... and its deadline after the nonce on an order, at most 30 s ahead (red-team round 27).
    placed = a.sign("kraken-main", "POST", "/0/private/AddOrder", body="ordertype=market&type=buy&volume=1&pair=XBTUSD").body
    m = re.fullmatch(r"nonce=[0-9]+&deadline=([0-9T%A-]+Z)&ordertype=market&type=buy&volume=1&pair=XBTUSD", placed)
    assert m, placed
    ahead = calendar.timegm(time.strptime(m[1].replace("%3A", ":"), "%Y-%m-%dT%H:%M:%SZ")) - time.time()
    assert 0 < ahead <= 30, ahead
    amended = a.sign("kraken-main", "POST", "/0/private/AmendOrder", body='{"txid":"O1","order_qty":"1"}').body
    assert re.fullmatch(r'\{"nonce":"[0-9]+","deadline":"[0-9T:-]+Z","txid":"O1","order_qty":"1"\}', amended), amended
