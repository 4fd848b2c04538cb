"""What ``tapsign.ccxt.attach`` promises a bot, apart from the signatures themselves (those are
the test_diff_* modules): no secret on the instance and nothing signed with its placeholders,
public requests untouched, refusals as ccxt exceptions, nothing sent when the agent refuses."""

from __future__ import annotations

import asyncio
from typing import Any

import ccxt
import ccxt.async_support
import pytest

import creds
import diffkit
import fakeagent
import tapsign
import tapsign.aio
from agentworld import World
from fakeagent import FakeAgent, using
from markets import market
from tapsign.ccxt import _rules, attach, ccxt_class
from test_diff_binance import MARKETS, respond, verify

PUBLIC_TICKER = {"symbol": "BTCUSDT", "lastPrice": "50000", "bidPrice": "49999", "askPrice": "50001"}


def binance(agent: Any, cls: Any = ccxt.binance) -> Any:
    ex, rec = diffkit.instance(cls, MARKETS, lambda m, u, b: PUBLIC_TICKER if "ticker" in u else respond(m, u, b))
    attach(ex, key="binance-main", agent=agent)
    return ex, rec


def test_the_instance_holds_placeholders_that_sign_nothing(agent: tapsign.Agent) -> None:
    ex, _ = binance(agent)
    assert ex.secret == _rules.PLACEHOLDER_SECRET and ex.apiKey == _rules.PLACEHOLDER_KEY
    assert ex.check_required_credentials()
    # ccxt's signing primitives are gone from the instance: a code path the adapter does not
    # know (a websocket login, a new endpoint family) gets a marker, not a signature.
    assert ex.hmac(b"x", ex.encode(ex.secret)) == _rules.UNSIGNED
    assert ex.jwt({"a": 1}, b"k") == _rules.UNSIGNED
    assert ex.eddsa(b"x", "k", "ed25519") == _rules.UNSIGNED


def test_attach_refuses_an_instance_that_holds_a_secret(agent: tapsign.Agent) -> None:
    with pytest.raises(ValueError) as refused:
        attach(ccxt.binance({"apiKey": creds.BINANCE[0], "secret": creds.BINANCE[1]}), key="binance-main", agent=agent)
    assert "tapsign key add binance-main --exchange binance" in str(refused.value)
    with pytest.raises(ValueError):
        attach(ccxt.okx({"password": "passphrase"}), key="okx-main", agent=agent)


def test_attach_refuses_an_exchange_tapsign_does_not_sign_for(agent: tapsign.Agent) -> None:
    with pytest.raises(ValueError) as refused:
        attach(ccxt.htx(), key="x", agent=agent)
    assert "htx" in str(refused.value) and "binance" in str(refused.value)


@pytest.mark.parametrize(
    "cls",
    [ccxt.binanceus, ccxt.bybiteu, ccxt.bybitid, ccxt.gateeu, ccxt.async_support.binanceus],
    ids=["binanceus", "bybiteu", "bybitid", "gateeu", "async-binanceus"],
)
def test_a_ccxt_class_for_another_companys_host_is_refused_not_matched_by_inheritance(agent: tapsign.Agent, cls: Any) -> None:
    # Red-team round 22: matched by its base class (binance, bybit, gate), the instance sent
    # the agent's signed requests and the API key to Binance.US, Bybit EU, Gate EU.
    ex = cls()
    with pytest.raises(ValueError) as refused:
        attach(ex, key="binance-main", agent=agent)
    assert ex.id in str(refused.value) and "scheme=" in str(refused.value)
    assert getattr(ex, "_tapsign", None) is None and not ex.apiKey


def test_scheme_names_the_exchange_outright(agent: tapsign.Agent) -> None:
    ex, rec = diffkit.instance(ccxt.binanceus, MARKETS, lambda m, u, b: {"balances": []})
    attach(ex, key="binance-main", agent=agent, scheme="binance")
    ex.fetch_balance()
    assert rec.sent and all(s.host == "api.binance.us" for s in rec.sent)
    with pytest.raises(ValueError) as refused:
        attach(ccxt.binanceus(), key="binance-main", agent=agent, scheme="binanceus")
    assert "binance, bitget" in str(refused.value)


def test_the_ccxt_ids_are_the_node_adapters() -> None:
    # Both adapters decide by this table; they must agree on every id.
    import os
    import re

    node = os.path.join(os.environ.get("TAPSIGN_REPO", "../.."), "clients/node/lib/ccxt/schemes.js")
    with open(node) as f:
        table = f.read().split("const BY_CCXT_ID = {", 1)[1].split("};", 1)[0]
    assert dict(re.findall(r"(\w+): '(\w+)'", table)) == _rules.IDS


def test_attach_twice_is_refused(agent: tapsign.Agent) -> None:
    ex, _ = binance(agent)
    with pytest.raises(ValueError):
        attach(ex, key="binance-main", agent=agent)


def test_an_async_instance_needs_the_async_agent(agent: tapsign.Agent) -> None:
    with pytest.raises(TypeError):
        attach(ccxt.async_support.binance(), key="binance-main", agent=agent)


def test_public_requests_are_untouched_and_need_no_agent(tmp_path: Any) -> None:
    nowhere = tapsign.Agent(str(tmp_path / "no-agent.sock"))
    ex, rec = binance(nowhere)
    plain, rec_plain = diffkit.instance(ccxt.binance, MARKETS, lambda m, u, b: PUBLIC_TICKER)
    assert ex.fetch_ticker("BTC/USDT")["last"] == 50000
    plain.fetch_ticker("BTC/USDT")
    assert [(s.method, s.url, s.headers, s.body) for s in rec.sent] == \
           [(s.method, s.url, s.headers, s.body) for s in rec_plain.sent]
    # A private call needs the agent: a ccxt NetworkError a bot already retries on.
    with pytest.raises(ccxt.ExchangeNotAvailable) as down:
        ex.fetch_balance()
    assert isinstance(down.value, tapsign.AgentNotRunning)
    assert isinstance(down.value, ccxt.NetworkError)
    assert "tapsign agent" in str(down.value)
    assert len(rec.sent) == 1, "the private request was not sent"


def test_locked_is_an_authentication_error_and_tapsign_locked(fresh_world: World) -> None:
    a = tapsign.Agent(fresh_world.sock)
    ex, rec = binance(a)
    ex.fetch_balance()
    a.lock()
    with pytest.raises(ccxt.AuthenticationError) as locked:
        ex.create_order("BTC/USDT", "limit", "buy", 0.01, 50000)
    assert isinstance(locked.value, tapsign.Locked) and isinstance(locked.value, tapsign.NoSession)
    assert locked.value.code == "locked"
    assert str(locked.value).startswith("binance tapsign: ") and "tapsign unlock" in str(locked.value)
    assert len(rec.sent) == 1, "nothing sent while locked"
    fresh_world.unlock()
    ex.create_order("BTC/USDT", "limit", "buy", 0.01, 50000)
    verify(rec.sent[-1])


def test_a_withdrawal_is_permission_denied_and_not_sent(agent: tapsign.Agent) -> None:
    ex, rec = binance(agent)
    with pytest.raises(ccxt.PermissionDenied) as denied:
        ex.withdraw("USDT", 100, "TJYeasTPa6gpEEfYqZhuEgvxoQWZ6x8Lvu", params={"network": "TRX"})
    assert isinstance(denied.value, tapsign.PolicyDenied)
    assert "withdraw" in str(denied.value)
    assert rec.sent == []


def test_a_key_of_another_exchange_is_refused_before_sending(agent: tapsign.Agent) -> None:
    ex, rec = diffkit.instance(ccxt.okx, [market("BTC/USDT", "BTC-USDT")], lambda m, u, b: {"code": "0", "data": []})
    attach(ex, key="binance-main", agent=agent)
    # The agent's trading profile may refuse the path first (policy_denied); if it signs,
    # the adapter sees a Binance answer where it expects OKX's headers (bad_request).
    with pytest.raises((ccxt.BadRequest, ccxt.PermissionDenied)) as refused:
        ex.fetch_open_orders("BTC/USDT")
    assert isinstance(refused.value, (tapsign.BadRequest, tapsign.PolicyDenied))
    assert "okx" in str(refused.value)
    assert rec.sent == []


# The calls ccxt's binance ``sign`` sends with the API key alone (its path is historicalTrades,
# userDataStream, listenKey or userListenToken), one per API family that has them; the Node
# adapter's test (clients/node/test/adapter.test.js) runs the same list.
KEY_ONLY_CALLS = [
    (ccxt.binanceusdm, "fapiPrivatePostListenKey", {}),
    (ccxt.binanceusdm, "fapiPrivatePutListenKey", {}),
    (ccxt.binanceusdm, "fapiPrivateDeleteListenKey", {}),
    (ccxt.binancecoinm, "dapiPrivatePostListenKey", {}),
    (ccxt.binance, "eapiPrivatePostListenKey", {}),
    (ccxt.binance, "papiPostListenKey", {}),
    (ccxt.binance, "publicPostUserDataStream", {}),
    (ccxt.binance, "publicPutUserDataStream", {"listenKey": "lk1"}),
    (ccxt.binance, "publicDeleteUserDataStream", {"listenKey": "lk1"}),
    (ccxt.binance, "sapiPostUserDataStream", {}),
    (ccxt.binance, "sapiPutUserDataStream", {"listenKey": "lk1"}),
    (ccxt.binance, "sapiPostUserListenToken", {}),
    (ccxt.binance, "publicGetHistoricalTrades", {"symbol": "BTCUSDT", "limit": 5}),
    (ccxt.binanceusdm, "fapiPublicGetHistoricalTrades", {"symbol": "BTCUSDT"}),
    (ccxt.binancecoinm, "dapiPublicGetHistoricalTrades", {"symbol": "BTCUSD_PERP"}),
]


def test_binance_key_only_endpoints_go_out_as_ccxt_sends_them_with_the_real_key(agent: tapsign.Agent) -> None:
    for cls, call, params in KEY_ONLY_CALLS:
        plain, rec_plain = diffkit.instance(cls, MARKETS, lambda m, u, b: {"listenKey": "lk1"},
                                            {"apiKey": creds.BINANCE[0], "secret": creds.BINANCE[1]})
        getattr(plain, call)(dict(params))
        ex, rec = diffkit.instance(cls, MARKETS, lambda m, u, b: {"listenKey": "lk1"})
        attach(ex, key="binance-main", agent=agent)
        getattr(ex, call)(dict(params))
        # The account read that taught the adapter the API key was signed, never sent.
        assert [(s.method, s.url, s.headers, s.body) for s in rec.sent] == \
               [(s.method, s.url, s.headers, s.body) for s in rec_plain.sent], call
        sent = rec.sent[0]
        assert sent.header("X-MBX-APIKEY") == creds.BINANCE[0], call
        assert "signature" not in sent.url + (sent.body or "") and "timestamp" not in sent.url + (sent.body or ""), call


def test_binance_paths_that_merely_end_like_a_key_only_one_go_to_the_agent(agent: tapsign.Agent) -> None:
    # Red-team round 21: the adapter told key-only calls by how the URL ends, and so sent
    # /sapi/v1/equity/listenKey, which ccxt signs and Binance wants signed, with the API key
    # alone. ccxt decides by its own path; so does the adapter now. The agent's binance
    # profile has neither of these: refused, and nothing is sent.
    for call, params in [("sapiPostEquityListenKey", {}), ("sapiPostUserDataStreamIsolated", {"symbol": "BTCUSDT"})]:
        ex, rec = binance(agent)
        with pytest.raises(ccxt.PermissionDenied) as refused:
            getattr(ex, call)(params)
        assert isinstance(refused.value, tapsign.PolicyDenied), call
        assert rec.sent == [], call


def test_an_async_binance_key_only_call_goes_out_with_the_real_key(world: World) -> None:
    async def go() -> None:
        ex, rec = diffkit.instance(ccxt.async_support.binanceusdm, MARKETS, lambda m, u, b: {"listenKey": "lk1"})
        attach(ex, key="binance-main", agent=tapsign.aio.Agent(world.sock))
        try:
            await ex.fapiPrivatePostListenKey()
            await ex.fapiPrivatePutListenKey()
        finally:
            await ex.close()
        assert [(s.method, s.path, s.header("X-MBX-APIKEY")) for s in rec.sent] == [
            ("POST", "/fapi/v1/listenKey", creds.BINANCE[0]),
            ("PUT", "/fapi/v1/listenKey", creds.BINANCE[0]),
        ]

    asyncio.run(go())


@using(fakeagent.serve_forever)
def test_a_key_only_call_with_another_exchanges_key_is_refused_not_sent(fake: FakeAgent) -> None:
    # The fake signs with an `X-Fake` header, as a key of another exchange would answer: the
    # account read that should teach the Binance API key teaches none.
    ex, rec = diffkit.instance(ccxt.binanceusdm, MARKETS, lambda m, u, b: {"listenKey": "lk1"})
    attach(ex, key="okx-main", agent=tapsign.Agent(fake.path))
    with pytest.raises(ccxt.BadRequest) as refused:
        ex.fapiPrivatePostListenKey()
    assert isinstance(refused.value, tapsign.BadRequest)
    assert "'okx-main' in another exchange's scheme (no X-MBX-APIKEY header)" in str(refused.value)
    assert [(m["method"], m["path"]) for m in fake.requests("sign")] == [("GET", "/fapi/v2/balance")]
    assert rec.sent == []


@using(fakeagent.binance_reads_refused_but_futures)
def test_the_api_key_is_learnt_from_the_key_only_calls_own_family_first(fake: FakeAgent) -> None:
    # Round 21's recheck: the adapter learnt the API key from a spot account read only, which
    # a futures key's `only` list refuses: ccxt.pro's first private stream on binanceusdm
    # failed on an endpoint the bot never asked for. The futures read is asked first.
    ex, rec = diffkit.instance(ccxt.binanceusdm, MARKETS, lambda m, u, b: {"listenKey": "lk1"})
    attach(ex, key="binance-futures", agent=tapsign.Agent(fake.path))
    ex.fapiPrivatePostListenKey()
    assert [(m["method"], m["path"]) for m in fake.requests("sign")] == [("GET", "/fapi/v2/balance")]
    assert [(s.path, s.header("X-MBX-APIKEY")) for s in rec.sent] == [("/fapi/v1/listenKey", "futures-api-key")]
    # A spot key-only call with a key that signs no read at all: every read is tried, then a
    # refusal that says how the adapter learns the key and what to do; nothing is sent.
    spot, rec = diffkit.instance(ccxt.binance, MARKETS, lambda m, u, b: {"listenKey": "lk1"})
    attach(spot, key="binance-nothing", agent=tapsign.Agent(fake.path))
    fake.received.clear()
    with pytest.raises(ccxt.PermissionDenied) as refused:
        spot.publicGetHistoricalTrades({"symbol": "BTCUSDT"})
    assert [m["path"] for m in fake.requests("sign")] == ["/api/v3/account", "/fapi/v2/balance", "/dapi/v1/balance"]
    assert isinstance(refused.value, tapsign.PolicyDenied)
    assert "make one signed call with this key first" in str(refused.value)
    assert rec.sent == []


# ccxt's OKX spot stop-loss and take-profit orders (the algo endpoint's `conditional` and
# `oco`); the Node adapter's test (clients/node/test/adapter.test.js) runs the same list.
OKX_SPOT_ALGO_ORDERS = [
    ("BTC/USDT", "market", "sell", 1, None, {"stopLossPrice": 55000}),
    ("BTC/USDT", "limit", "sell", 1, 70000, {"takeProfitPrice": 69000}),
    # ccxt sends an `oco` to the algo endpoint for type "oco" only.
    ("BTC/USDT", "oco", "sell", 1, None, {"stopLossPrice": 55000, "takeProfitPrice": 69000}),
]


def okx_spot(cls: Any = ccxt.okx) -> Any:
    answer = {"code": "0", "msg": "", "data": [{"algoId": "1", "algoClOrdId": "", "clOrdId": "", "sCode": "0", "sMsg": "", "tag": ""}]}
    return diffkit.instance(cls, [market("BTC/USDT", "BTC-USDT")], lambda m, u, b: answer)


def ccxt_writes(args: Any) -> str:
    """The body ccxt itself writes for ``create_order(*args)`` on OKX."""
    plain, _ = okx_spot()
    return str(plain.json(plain.create_order_request(*args)))


@using(fakeagent.okx_signs)
def test_an_okx_spot_stop_loss_goes_to_the_agent_with_tdmode_cash(fake: FakeAgent) -> None:
    # Red-team round 22: ccxt writes its margin mode (`cross` unless defaultMarginMode says
    # otherwise) into a spot `conditional`/`oco` algo order, the agent refuses `cross` on a
    # spot pair as a margin order, and a bot's ordinary stop-loss was refused.
    ex, rec = okx_spot()
    attach(ex, key="okx-main", agent=tapsign.Agent(fake.path))
    for args in OKX_SPOT_ALGO_ORDERS:
        wrote = ccxt_writes(args)
        assert '"tdMode":"cross"' in wrote, "ccxt writes cross for a spot conditional order"
        ex.create_order(*args)
        asked = fake.requests("sign")[-1]
        assert asked["path"] == "/api/v5/trade/order-algo"
        # The one value changed, every other byte as ccxt wrote it; sent as signed.
        assert asked["body"] == wrote.replace('"tdMode":"cross"', '"tdMode":"cash"'), args
        assert rec.sent[-1].body == asked["body"]

    # A bot that asked for margin: ccxt puts `ccy` in, and the body goes to the agent as it
    # is (which refuses it unless the key's config says `margin = true`).
    margin = ("BTC/USDT", "market", "sell", 1, None, {"stopLossPrice": 55000, "marginMode": "cross"})
    wrote = ccxt_writes(margin)
    ex.create_order(*margin)
    assert fake.requests("sign")[-1]["body"] == wrote
    assert '"tdMode":"cross"' in wrote and '"ccy":"BTC"' in wrote


def test_an_okx_spot_stop_loss_is_signed_by_the_default_policy_and_a_margin_one_refused(agent: tapsign.Agent) -> None:
    # The real agent, with the default trading profile (no `margin = true`).
    ex, rec = okx_spot()
    attach(ex, key="okx-main", agent=agent)
    ex.create_order(*OKX_SPOT_ALGO_ORDERS[0])
    assert '"tdMode":"cash"' in (rec.sent[-1].body or "")
    with pytest.raises(ccxt.PermissionDenied) as refused:
        ex.create_order("BTC/USDT", "market", "sell", 1, None, {"stopLossPrice": 55000, "marginMode": "cross"})
    assert "margin = true" in str(refused.value)
    assert len(rec.sent) == 1


def test_nothing_leaves_with_a_placeholder(agent: tapsign.Agent) -> None:
    ex, rec = binance(agent)
    adapter = ex._tapsign
    for url, headers in [
        ("https://api.binance.com/api/v3/order?signature=" + _rules.UNSIGNED, {}),
        ("https://api.binance.com/api/v3/order", {"X-MBX-APIKEY": _rules.PLACEHOLDER_KEY}),
    ]:
        with pytest.raises(tapsign.Internal) as refused:
            adapter.checked(url, "GET", headers, None)
        assert "nothing was sent" in str(refused.value)


def test_strip_keeps_the_bots_bytes_in_order() -> None:
    req = {
        "url": "https://api.binance.com/api/v3/order?timestamp=1&symbol=BTC%2FX&b=2&signature=" + _rules.UNSIGNED,
        "method": "DELETE", "body": None,
        "headers": {"X-MBX-APIKEY": _rules.PLACEHOLDER_KEY, "User-Agent": "bot"},
    }
    u = _rules.strip(_rules.RULES["binance"], req)
    assert (u.method, u.base, u.path, u.query, u.body) == ("DELETE", "https://api.binance.com", "/api/v3/order",
                                                           "symbol=BTC%2FX&b=2", None)
    assert u.headers == {"User-Agent": "bot"}
    kraken = _rules.strip(_rules.RULES["kraken"], {"url": "https://api.kraken.com/0/private/AddOrder", "method": "POST",
                                                   "body": '{"nonce":"17","pair":"XBTUSD"}', "headers": {}})
    assert kraken.body == '{"pair":"XBTUSD"}'
    upbit = _rules.strip(_rules.RULES["upbit"], {"url": "https://api.upbit.com/v1/orders?states%5B%5D=wait&market=KRW-BTC",
                                                 "method": "GET", "body": None, "headers": {}})
    assert upbit.query == "states[]=wait&market=KRW-BTC", "Upbit hashes and gets the unencoded query"
    gate = _rules.strip(_rules.RULES["gate"], {"url": "https://api.gateio.ws/api/v4/spot/orders?currency_pair=BTC_USDT&text=t-a%3Ab",
                                               "method": "GET", "body": None, "headers": {}})
    assert gate.query == "currency_pair=BTC_USDT&text=t-a:b", "Gate verifies the query decoded"


@pytest.mark.parametrize("cls, base", [
    (tapsign.Locked, ccxt.AuthenticationError), (tapsign.Expired, ccxt.AuthenticationError),
    (tapsign.BudgetExhausted, ccxt.AuthenticationError), (tapsign.UnknownKey, ccxt.AuthenticationError),
    (tapsign.PinInvalid, ccxt.AuthenticationError), (tapsign.PolicyDenied, ccxt.PermissionDenied),
    (tapsign.Forbidden, ccxt.PermissionDenied), (tapsign.NotYourAgent, ccxt.PermissionDenied),
    (tapsign.BadRequest, ccxt.BadRequest), (tapsign.AgentNotRunning, ccxt.ExchangeNotAvailable),
    (tapsign.Busy, ccxt.ExchangeNotAvailable), (tapsign.ConnectionLost, ccxt.NetworkError),
    (tapsign.AgentTimeout, ccxt.RequestTimeout), (tapsign.Internal, ccxt.ExchangeError),
    (tapsign.KeystoreError, ccxt.ExchangeError), (tapsign.VersionMismatch, ccxt.ExchangeError),
])
def test_each_tapsign_error_is_a_ccxt_error(cls: Any, base: Any) -> None:
    made = ccxt_class(cls)
    assert issubclass(made, base) and issubclass(made, cls)
    e = made("binance tapsign: m", "c")
    assert e.message == "binance tapsign: m" and e.code == "c"


def test_async_instance_end_to_end(fresh_world: World) -> None:
    async def go() -> None:
        a = tapsign.aio.Agent(fresh_world.sock)
        ex, rec = binance(a, ccxt.async_support.binance)
        try:
            await ex.create_order("BTC/USDT", "limit", "buy", 0.01, 50000)
            verify(rec.sent[0])
            await a.lock()
            with pytest.raises(ccxt.AuthenticationError) as locked:
                await ex.fetch_balance()
            assert isinstance(locked.value, tapsign.Locked)
            await a.unlock(timeout=30)
            with pytest.raises(ccxt.PermissionDenied):
                await ex.withdraw("USDT", 1, "TJYeasTPa6gpEEfYqZhuEgvxoQWZ6x8Lvu")
            assert len(rec.sent) == 1
        finally:
            await ex.close()

    asyncio.run(go())


# Red-team round 23, F3: the agent serves 63 signing connections (64, one kept for status and
# lock). An instance attached without an agent gets one of its own; ccxt's close() closes its
# connection, so instances made and closed one after another never hold more than one. Each
# instance is kept alive here, so no garbage collection closes anything.
INSTANCES = 70


def test_close_releases_the_connection_of_the_agent_attach_made(fresh_world: World, monkeypatch: Any) -> None:
    monkeypatch.setenv("TAPSIGN_SOCK", fresh_world.sock)
    kept, failures = [], []
    for i in range(INSTANCES):
        ex, _ = diffkit.instance(ccxt.binance, MARKETS, respond)
        attach(ex, key="binance-main")
        kept.append(ex)
        try:
            ex.fetch_balance()
        except ccxt.BaseError as e:
            failures.append(f"instance {i}: {type(e).__name__}: {e}")
        ex.close()
    assert failures == []


def test_async_close_releases_the_connection_of_the_agent_attach_made(fresh_world: World, monkeypatch: Any) -> None:
    monkeypatch.setenv("TAPSIGN_SOCK", fresh_world.sock)

    async def go() -> None:
        kept, failures = [], []
        for i in range(INSTANCES):
            ex, _ = diffkit.instance(ccxt.async_support.binance, MARKETS, respond)
            attach(ex, key="binance-main")
            kept.append(ex)
            try:
                await ex.fetch_balance()
            except ccxt.BaseError as e:
                failures.append(f"instance {i}: {type(e).__name__}: {e}")
            await ex.close()
        assert failures == []

    asyncio.run(go())


def _binance_signs(conn: fakeagent.Conn, n: int) -> None:
    if not conn.hello():
        return
    while (msg := conn.read()) is not None:
        answer = fakeagent.signed(msg)
        answer["headers"] = {"X-MBX-APIKEY": "k"}
        conn.send(answer)


@using(_binance_signs)
def test_close_leaves_an_agent_passed_in_open(fake: FakeAgent) -> None:
    shared = tapsign.Agent(fake.path)
    try:
        for _ in range(3):
            ex, _ = diffkit.instance(ccxt.binance, MARKETS, respond)
            attach(ex, key="binance-main", agent=shared)
            ex.fetch_balance()
            ex.close()
        # One connection for every instance, still open: the next request goes on it.
        shared.sign("binance-main", "GET", "/api/v3/account")
        assert fake.connections == 1
    finally:
        shared.close()


@using(_binance_signs)
def test_a_call_after_close_connects_again(fake: FakeAgent, monkeypatch: Any) -> None:
    monkeypatch.setenv("TAPSIGN_SOCK", fake.path)
    ex, rec = diffkit.instance(ccxt.binance, MARKETS, respond)
    attach(ex, key="binance-main")
    ex.fetch_balance()
    ex.close()
    ex.fetch_balance()
    ex.close()
    assert fake.connections == 2 and len(rec.sent) == 2
