"""Kraken (spot REST) through the ccxt adapter, against ccxt's own signing with the real secret
and against Kraken's documented scheme. Everything is compared byte for byte: the agent puts
its nonce first in the body, where ccxt puts its own. On an order ccxt sends no `deadline`; the
agent stamps its own after the nonce (agent/src/sign/kraken.rs), so there the body is ccxt's
but for it, and API-Sign, which covers it, is checked by ``verify`` alone.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import json
import re
import time
from urllib.parse import unquote
from typing import Any

import pytest

import creds
import diffkit
from diffkit import Sent
from markets import market
import tapsign
import tapsign.aio

MARKETS = [market("BTC/USD", "XXBTZUSD", amount=0.00000001, price=0.1, altname="XBTUSD",
                  base_id="XXBT", quote_id="ZUSD")]
ORDER = {"refid": None, "userref": 0, "status": "open", "opentm": 1700000000.1, "starttm": 0, "expiretm": 0,
         "descr": {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "price": "50000", "price2": "0",
                   "leverage": "none", "order": "buy 0.01000000 XBTUSD @ limit 50000.0", "close": ""},
         "vol": "0.01000000", "vol_exec": "0.00000000", "cost": "0", "fee": "0", "price": "0", "misc": "", "oflags": "fciq"}


def respond(method: str, url: str, body: Any) -> Any:
    """Shapes from Kraken's REST reference."""
    path = url.split("?")[0]
    if path.endswith("/AddOrder"):
        return {"error": [], "result": {"descr": {"order": "buy 0.01 XBTUSD @ limit 50000"}, "txid": ["OYVGEW-VYV5B-UUEXSK"]}}
    if path.endswith("/CancelOrder"):
        return {"error": [], "result": {"count": 1}}
    if path.endswith("/BalanceEx"):
        return {"error": [], "result": {"ZUSD": {"balance": "100.0000", "hold_trade": "0.0000"}}}
    if path.endswith("/OpenOrders"):
        return {"error": [], "result": {"open": {"OYVGEW-VYV5B-UUEXSK": ORDER}}}
    if path.endswith("/ClosedOrders"):
        return {"error": [], "result": {"closed": {}, "count": 0}}
    return {"error": [], "result": {}}


def nonce(s: Sent) -> str:
    if (s.body or "").startswith("{"):
        assert s.body.startswith('{"nonce":"'), "the nonce leads the JSON body"
        return json.loads(s.body)["nonce"]
    first = (s.body or "").split("&")[0]
    assert first.startswith("nonce="), "the nonce leads the body"
    return first[len("nonce="):]


def stamps(s: Sent) -> dict:
    return {"nonce": int(nonce(s))}


ORDER_METHODS = ("/AddOrder", "/AmendOrder", "/EditOrder")
STAMPED = re.compile(r"(nonce=[0-9]+)&deadline=([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}%3A[0-9]{2}%3A[0-9]{2}Z)(&.*)?")


def compare(a: Sent, b: Sent) -> None:
    assert (a.method, a.url) == (b.method, b.url)
    if a.path.endswith(ORDER_METHODS) and "deadline=" not in (b.body or ""):
        m = STAMPED.fullmatch(a.body or "")
        assert m, f"the agent's deadline follows its nonce: {a.body}"
        ahead = calendar.timegm(time.strptime(unquote(m[2]), "%Y-%m-%dT%H:%M:%SZ")) - time.time()
        assert 0 < ahead <= 30, f"the deadline is {ahead} s ahead"
        assert m[1] + (m[3] or "") == b.body
        diffkit.same_headers(a.headers, b.headers, ignore=("API-Sign",))
        return
    assert a.body == b.body
    diffkit.same_headers(a.headers, b.headers)


def verify(s: Sent) -> None:
    """base64(HMAC-SHA512(base64decode(secret), path || SHA-256(nonce + body)))."""
    n = nonce(s)
    assert int(n) >= int(time.time() * 1000) - 30_000, "at least the agent's clock in ms"
    assert s.header("API-Key") == creds.KRAKEN[0]
    digest = hashlib.sha256((n + (s.body or "")).encode()).digest()
    mac = hmac.new(base64.b64decode(creds.KRAKEN[1]), s.path.encode() + digest, hashlib.sha512)
    assert s.header("API-Sign") == base64.b64encode(mac.digest()).decode()


SPEC = diffkit.Spec("kraken", "kraken-main", {"apiKey": creds.KRAKEN[0], "secret": creds.KRAKEN[1]},
                    MARKETS, respond, stamps, compare, verify)
CALLS = {
    "create_order": lambda ex: ex.create_order("BTC/USD", "limit", "buy", 0.01, 50000),
    # A conditional close: close[ordertype]=...&close[price]=... in the form body.
    "create_order_with_close": lambda ex: ex.create_order(
        "BTC/USD", "limit", "buy", 0.01, 50000, {"close": {"ordertype": "stop-loss", "price": 45000}}),
    "cancel_order": lambda ex: ex.cancel_order("OYVGEW-VYV5B-UUEXSK", "BTC/USD"),
    "fetch_balance": lambda ex: ex.fetch_balance(),
    "fetch_open_orders": lambda ex: ex.fetch_open_orders("BTC/USD"),
    "fetch_closed_orders": lambda ex: ex.fetch_closed_orders("BTC/USD"),
    # A JSON body led by ccxt's nonce, which the adapter takes out for the agent's.
    "cancel_orders": lambda ex: ex.cancel_orders(["OYVGEW-VYV5B-UUEXSK", "OB5VMB-B4U2U-DK2WRW"], "BTC/USD"),
}


@pytest.mark.parametrize("call", sorted(CALLS))
def test_kraken(call: str, agent: tapsign.Agent) -> None:
    diffkit.check(SPEC, CALLS[call], agent)


@pytest.mark.parametrize("call", ["create_order", "fetch_balance"])
def test_kraken_async(call: str, world: Any) -> None:
    diffkit.check(SPEC, CALLS[call], tapsign.aio.Agent(world.sock), use_async=True)


def test_kraken_order_with_the_bots_own_deadline(agent: tapsign.Agent) -> None:
    # Within the agent's 30 s, a bot's deadline stands: the body is ccxt's, byte for byte.
    deadline = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(time.time()) + 20))
    sent = diffkit.check(SPEC, lambda ex: ex.create_order("BTC/USD", "limit", "buy", 0.01, 50000, {"deadline": deadline}), agent)
    assert sent[0].body.endswith("&deadline=" + deadline.replace(":", "%3A"))


def test_kraken_nonces_increase(agent: tapsign.Agent) -> None:
    sent = [diffkit.check(SPEC, CALLS["fetch_balance"], agent)[0] for _ in range(3)]
    nonces = [int(nonce(s)) for s in sent]
    assert nonces == sorted(set(nonces)), nonces
