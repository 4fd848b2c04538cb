"""Bitget (v3 unified and v2 classic accounts) through the ccxt adapter, against ccxt's own
signing with the real secret and against Bitget's documented scheme. Everything is compared
byte for byte. ccxt's first private call asks ``GET /api/v3/account/settings``: an answer
means a unified account (v3 endpoints), an error a classic one (v2); both are tested.
"""

from __future__ import annotations

import time
from typing import Any, Callable
from urllib.parse import unquote

import ccxt
import pytest

import creds
import diffkit
from diffkit import Sent
from markets import market
import tapsign
import tapsign.aio

MARKETS = [
    market("BTC/USDT", "BTCUSDT"),
    market("BTC/USDT:USDT", "BTCUSDT", "swap", settle="USDT", settle_id="USDT", linear=True,
           contract_size=1, amount=0.001, price=0.1),
]


def ok(data: Any) -> Any:
    return {"code": "00000", "msg": "success", "requestTime": 1700000000000, "data": data}


def responder(unified: bool) -> Callable[[str, str, Any], Any]:
    def respond(method: str, url: str, body: Any) -> Any:
        """Shapes from Bitget's v2/v3 reference."""
        path = url.split("?")[0]
        if path.endswith("/api/v3/account/settings"):
            if not unified:
                raise ccxt.ExchangeError('bitget {"code":"40084","msg":"classic account"}')
            return ok({"assetMode": "union", "holdMode": "one_way_mode"})
        if path.endswith(("/place-order", "/cancel-order")):
            return ok({"orderId": "1", "clientOid": "c-1"})
        if path.endswith(("/account/assets", "/spot/account/assets")):
            return ok([])
        if path.endswith("/set-leverage"):
            return ok({"symbol": "BTCUSDT", "marginCoin": "USDT", "longLeverage": "5", "shortLeverage": "5"})
        return ok([])

    return respond


def stamps(s: Sent) -> dict:
    return {"ms": int(s.header("ACCESS-TIMESTAMP"))}


def compare(a: Sent, b: Sent) -> None:
    assert (a.method, a.url, a.body) == (b.method, b.url, b.body)
    diffkit.same_headers(a.headers, b.headers)


def verify(s: Sent) -> None:
    """base64 HMAC-SHA256 of timestamp + METHOD + path(?query) + body; query sorted by name;
    passphrase in clear."""
    ts = s.header("ACCESS-TIMESTAMP")
    assert abs(int(ts) - time.time() * 1000) < 30_000
    assert s.header("ACCESS-KEY") == creds.BITGET[0]
    assert s.header("ACCESS-PASSPHRASE") == creds.BITGET[2]
    names = [p.split("=")[0] for p in s.query.split("&") if p]
    assert names == sorted(names), "Bitget wants the query sorted by name"
    text = ts + s.method + s.path + ("?" + s.query if s.query else "") + (s.body or "")
    assert s.header("ACCESS-SIGN") == diffkit.hmac_b64(creds.BITGET[1].encode(), text.encode())


CREDS = {"apiKey": creds.BITGET[0], "secret": creds.BITGET[1], "password": creds.BITGET[2]}
UNIFIED = diffkit.Spec("bitget", "bitget-main", CREDS, MARKETS, responder(True), stamps, compare, verify)
CLASSIC = diffkit.Spec("bitget", "bitget-main", CREDS, MARKETS, responder(False), stamps, compare, verify)
CALLS = {
    "create_order": lambda ex: ex.create_order("BTC/USDT", "limit", "buy", 0.01, 50000),
    "create_swap_order": lambda ex: ex.create_order("BTC/USDT:USDT", "limit", "buy", 0.01, 50000),
    "cancel_order": lambda ex: ex.cancel_order("1", "BTC/USDT"),
    "fetch_balance": lambda ex: ex.fetch_balance(),
    "fetch_open_orders": lambda ex: ex.fetch_open_orders("BTC/USDT"),
    "fetch_positions": lambda ex: ex.fetch_positions(["BTC/USDT:USDT"]),
    "set_leverage": lambda ex: ex.set_leverage(5, "BTC/USDT:USDT"),
}


@pytest.mark.parametrize("call", sorted(CALLS))
def test_bitget_unified_account(call: str, agent: tapsign.Agent) -> None:
    diffkit.check(UNIFIED, CALLS[call], agent)


@pytest.mark.parametrize("call", sorted(CALLS))
def test_bitget_classic_account(call: str, agent: tapsign.Agent) -> None:
    diffkit.check(CLASSIC, CALLS[call], agent)


@pytest.mark.parametrize("call", ["create_order", "fetch_positions"])
def test_bitget_async(call: str, world: Any) -> None:
    diffkit.check(UNIFIED, CALLS[call], tapsign.aio.Agent(world.sock), use_async=True)


def compare_decoded(a: Sent, b: Sent) -> None:
    """ccxt sends the query percent-encoded and signs it decoded, as Bitget verifies it; the
    adapter sends what the agent signs, the decoded query: the URL is ccxt's, decoded, and
    every header, ACCESS-SIGN included, is ccxt's."""
    assert (a.method, a.url, a.body) == (b.method, unquote(b.url), b.body)
    assert a.url != b.url, "the value needs no encoding: pick one ccxt encodes"
    diffkit.same_headers(a.headers, b.headers)


def test_bitget_signs_a_query_value_ccxt_encodes_as_ccxt_does(agent: tapsign.Agent) -> None:
    # Red-team round 22: signed as ccxt sends it (encoded), idLessThan=a%2Ab... got another
    # ACCESS-SIGN than ccxt's, which signs the decoded bytes Bitget hashes.
    spec = diffkit.Spec("bitget", "bitget-main", CREDS, MARKETS, responder(False), stamps, compare_decoded, verify)
    sent = diffkit.check(
        spec, lambda ex: ex.privateSpotGetV2SpotTradeUnfilledOrders({"symbol": "BTCUSDT", "idLessThan": "a*b~!()"}), agent
    )
    assert sent[-1].query == "idLessThan=a*b~!()&symbol=BTCUSDT"


@pytest.mark.parametrize("value", ["a b", "ü", "a'b"])
def test_bitget_refuses_a_query_value_that_cannot_go_out_unencoded(value: str, agent: tapsign.Agent) -> None:
    # As for Gate: requests and urllib3 (and http.client) encode a space or a non-ASCII letter
    # again, so Bitget would verify other bytes than the agent signed. Refused before the agent
    # is asked; nothing is sent. An apostrophe too, as the agent refuses it (fetch sends %27).
    from tapsign.ccxt import attach

    ex, rec = diffkit.instance(ccxt.bitget, MARKETS, responder(False))
    attach(ex, key="bitget-main", agent=agent)
    with pytest.raises(ccxt.BadRequest) as refused:
        ex.privateSpotGetV2SpotTradeUnfilledOrders({"symbol": "BTCUSDT", "idLessThan": value})
    assert "Bitget signs the query unencoded" in str(refused.value)
    assert rec.sent == []
