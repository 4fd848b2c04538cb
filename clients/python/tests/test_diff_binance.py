"""Binance (spot, USDⓈ-M and COIN-M futures; HMAC and Ed25519 keys) through the ccxt adapter,
against ccxt's own signing with the real secret and against Binance's documented scheme.

Known difference, by design: ccxt writes ``timestamp`` as the *first* parameter; the agent
appends it after the bot's parameters (docs/exchanges.md, "Binance"). Binance signs the
parameter string as sent, in any order, so both are valid; the test checks that the
parameters are the same, in the same order, with the same timestamp, and that ccxt's own
HMAC/Ed25519 over the agent's string is the agent's signature.

ccxt also adds ``recvWindow=10000`` by default, above the agent's 5000 ms cap: the adapter
drops that default (Binance's own default, 5000, applies). Both instances here run with the
default dropped; ``test_ccxt_default_recv_window_is_dropped`` pins the difference itself.
"""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any, List, Tuple
from urllib.parse import unquote

import ccxt
import pytest

import creds
import diffkit
from diffkit import Sent
from markets import market
from tapsign.ccxt import attach
import tapsign

INFO = {"orderTypes": ["LIMIT", "MARKET", "STOP_LOSS_LIMIT"]}
MARKETS = [
    market("BTC/USDT", "BTCUSDT", info=INFO),
    market("BTC/USDT:USDT", "BTCUSDT", "swap", settle="USDT", settle_id="USDT", linear=True, contract_size=1, info=INFO),
    market("BTC/USD:BTC", "BTCUSD_PERP", "swap", settle="BTC", settle_id="BTC", linear=False, contract_size=100, info=INFO),
]


def respond(method: str, url: str, body: Any) -> Any:
    """Shapes from Binance's API docs, trimmed to what ccxt reads."""
    path = url.split("?")[0]
    if path.endswith("/api/v3/order") and method == "POST":
        return {"symbol": "BTCUSDT", "orderId": 28, "clientOrderId": "x-1", "transactTime": 1507725176595,
                "price": "50000.00", "origQty": "0.01", "executedQty": "0", "status": "NEW",
                "timeInForce": "GTC", "type": "LIMIT", "side": "BUY", "fills": []}
    if path.endswith("/order") and method == "DELETE":
        return {"symbol": "BTCUSDT", "orderId": 123, "status": "CANCELED", "price": "50000", "origQty": "0.01",
                "executedQty": "0", "type": "LIMIT", "side": "BUY"}
    if path.endswith("/api/v3/account"):
        return {"balances": [{"asset": "BTC", "free": "1.0", "locked": "0.5"}], "updateTime": 1}
    if path.endswith(("/openOrders", "/myTrades", "/positionRisk", "/leverageBracket")):
        return []
    if path.endswith("/batchOrders"):
        return [{"symbol": "BTCUSDT", "orderId": 28 + i, "clientOrderId": "x-1", "price": "50000", "origQty": "0.01",
                 "executedQty": "0", "status": "NEW" if method == "POST" else "CANCELED", "timeInForce": "GTC",
                 "type": "LIMIT", "side": "BUY", "updateTime": 1507725176595} for i in range(2)]
    if path.endswith("/marginType"):
        return {"code": 200, "msg": "success"}
    if path.endswith("/leverage"):
        return {"leverage": 5, "maxNotionalValue": "1000000", "symbol": "BTCUSDT"}
    return {}


def carrier(s: Sent) -> Tuple[str, str]:
    """(``query``, ``body``) with the signature taken off, and the signature."""
    if s.body and "&signature=" in s.body:
        payload, sig = s.body.rsplit("&signature=", 1)
        return s.query + payload, sig
    payload, sig = s.query.rsplit("&signature=", 1)
    return payload + (s.body or ""), sig


def pairs(s: str) -> List[str]:
    return [p for p in s.split("&") if p]


def stamps(s: Sent) -> dict:
    signed, _ = carrier(s)
    ts = next(p for p in pairs(signed) if p.startswith("timestamp="))
    return {"ms": int(ts.split("=")[1])}


def compare(a: Sent, b: Sent) -> None:
    assert (a.method, a.host, a.path) == (b.method, b.host, b.path)
    diffkit.same_headers(a.headers, b.headers)
    assert ("&signature=" in (a.body or "")) == ("&signature=" in (b.body or "")), "params moved between query and body"
    signed_a, sig_a = carrier(a)
    signed_b, _ = carrier(b)
    pa, pb = pairs(signed_a), pairs(signed_b)
    assert pb[0].startswith("timestamp="), "ccxt puts timestamp first"
    assert pa[-1].startswith("timestamp="), "the agent appends timestamp last"
    assert pa[-1] == pb[0], "same timestamp"
    assert pa[:-1] == pb[1:], "the same parameters, in the same order"
    assert "recvWindow=10000" not in signed_a
    # ccxt's own primitive, with the real secret, over the agent's exact string.
    if a.header("X-MBX-APIKEY") == creds.BINANCE_ED25519[0]:
        expected = ccxt.Exchange.encode_uri_component(
            ccxt.Exchange.eddsa(signed_a.encode(), creds.BINANCE_ED25519[1], "ed25519")
        )
    else:
        expected = ccxt.Exchange.hmac(signed_a.encode(), creds.BINANCE[1].encode(), hashlib.sha256)
    assert sig_a == expected


def verify(s: Sent) -> None:
    """Binance: HMAC-SHA256 hex of query+body (no separator), or Ed25519 over the same bytes,
    base64, percent-encoded; ``signature`` last; the key in X-MBX-APIKEY."""
    signed, sig = carrier(s)
    ts = int(stamps(s)["ms"])
    assert abs(ts - time.time() * 1000) < 30_000, "the agent stamps its current clock"
    if s.header("X-MBX-APIKEY") == creds.BINANCE_ED25519[0]:
        assert "%" in sig or sig.isalnum()
        creds.BINANCE_ED25519_PUBLIC.verify(base64.b64decode(unquote(sig)), signed.encode())
    else:
        assert s.header("X-MBX-APIKEY") == creds.BINANCE[0]
        assert sig == diffkit.hmac_hex(creds.BINANCE[1].encode(), signed.encode())


def _drop_default_recv_window(ex: Any) -> None:
    ex.options["recvWindow"] = None


SPEC = diffkit.Spec(
    "binance", "binance-main", {"apiKey": creds.BINANCE[0], "secret": creds.BINANCE[1]},
    MARKETS, respond, stamps, compare, verify, prepare=_drop_default_recv_window,
)
ED25519 = diffkit.Spec(
    "binance", "binance-ed", {"apiKey": creds.BINANCE_ED25519[0], "secret": creds.BINANCE_ED25519[1]},
    MARKETS, respond, stamps, compare, verify, prepare=_drop_default_recv_window,
)

CALLS = {
    "create_order": lambda ex: ex.create_order("BTC/USDT", "limit", "buy", 0.01, 50000),
    "cancel_order": lambda ex: ex.cancel_order("123", "BTC/USDT"),
    "fetch_balance": lambda ex: ex.fetch_balance(),
    "fetch_open_orders": lambda ex: ex.fetch_open_orders("BTC/USDT"),
    "fetch_my_trades": lambda ex: ex.fetch_my_trades("BTC/USDT", limit=10),
    "usdm_create_order": lambda ex: ex.create_order("BTC/USDT:USDT", "limit", "sell", 0.01, 50000),
    "usdm_set_leverage": lambda ex: ex.set_leverage(5, "BTC/USDT:USDT"),
    "usdm_fetch_positions": lambda ex: ex.fetch_positions(["BTC/USDT:USDT"]),
    "coinm_create_order": lambda ex: ex.create_order("BTC/USD:BTC", "limit", "buy", 1, 50000),
    "coinm_cancel_order": lambda ex: ex.cancel_order("77", "BTC/USD:BTC"),
    # ccxt writes the batch raw (`batchOrders=[{...}]`) and the batch cancel's list as
    # `orderidlist` (lower case, which Binance takes).
    "usdm_create_orders": lambda ex: ex.create_orders([
        {"symbol": "BTC/USDT:USDT", "type": "limit", "side": "buy", "amount": 0.01, "price": 50000},
        {"symbol": "BTC/USDT:USDT", "type": "limit", "side": "sell", "amount": 0.01, "price": 60000},
    ]),
    # Each order of a batch is held to the single order's names and values: ccxt's own
    # extras (a boolean reduceOnly, a client id, positionSide), coin-M, and a batch edit.
    "usdm_create_orders_params": lambda ex: ex.create_orders([
        {"symbol": "BTC/USDT:USDT", "type": "limit", "side": "buy", "amount": 0.01, "price": 50000,
         "params": {"reduceOnly": True, "clientOrderId": "abc"}},
        {"symbol": "BTC/USDT:USDT", "type": "market", "side": "sell", "amount": 0.01,
         "params": {"positionSide": "LONG"}},
    ]),
    "coinm_create_orders": lambda ex: ex.create_orders([
        {"symbol": "BTC/USD:BTC", "type": "limit", "side": "buy", "amount": 1, "price": 50000},
    ]),
    "usdm_edit_orders": lambda ex: ex.edit_orders([
        {"id": "1", "symbol": "BTC/USDT:USDT", "type": "limit", "side": "buy", "amount": 0.01, "price": 50000},
    ]),
    "usdm_cancel_orders": lambda ex: ex.cancel_orders(["1", "2"], "BTC/USDT:USDT"),
    "usdm_set_margin_mode": lambda ex: ex.set_margin_mode("isolated", "BTC/USDT:USDT"),
}


@pytest.mark.parametrize("call", sorted(CALLS))
def test_binance(call: str, agent: tapsign.Agent) -> None:
    diffkit.check(SPEC, CALLS[call], agent)


@pytest.mark.parametrize("call", ["create_order", "fetch_open_orders", "usdm_create_order"])
def test_binance_ed25519_key(call: str, agent: tapsign.Agent) -> None:
    diffkit.check(ED25519, CALLS[call], agent)


@pytest.mark.parametrize("call", ["create_order", "cancel_order", "usdm_fetch_positions"])
def test_binance_async(call: str, world: Any) -> None:
    diffkit.check(SPEC, CALLS[call], tapsign.aio.Agent(world.sock), use_async=True)


def test_ccxt_default_recv_window_is_dropped(agent: tapsign.Agent) -> None:
    plain, rec_plain = diffkit.instance(ccxt.binance, MARKETS, respond)
    plain.apiKey, plain.secret = creds.BINANCE
    plain.fetch_open_orders("BTC/USDT")
    assert "recvWindow=10000" in rec_plain.sent[0].query

    ex, rec = diffkit.instance(ccxt.binance, MARKETS, respond)
    attach(ex, key="binance-main", agent=agent)
    ex.fetch_open_orders("BTC/USDT")
    assert "recvWindow" not in rec.sent[0].query
    verify(rec.sent[0])


def test_a_recv_window_the_bot_sets_is_kept_and_checked(agent: tapsign.Agent) -> None:
    ex, rec = diffkit.instance(ccxt.binance, MARKETS, respond)
    attach(ex, key="binance-main", agent=agent)
    ex.fetch_open_orders("BTC/USDT", params={"recvWindow": 3000})
    assert "recvWindow=3000" in rec.sent[0].query
    verify(rec.sent[0])
    with pytest.raises(ccxt.BadRequest) as refused:
        ex.fetch_open_orders("BTC/USDT", params={"recvWindow": 60000})
    assert isinstance(refused.value, tapsign.BadRequest)
    assert "recvWindow" in str(refused.value)
    assert len(rec.sent) == 1, "a refused request is not sent"
