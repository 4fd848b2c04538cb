"""KuCoin (classic and unified accounts) through the ccxt adapter, against ccxt's own signing
with the real secret and against KuCoin's documented scheme. Everything is compared byte for
byte. ccxt's first private call asks ``GET /api/ua/v1/account/mode``; it is signed and
compared like the rest.

ccxt also tags each request with its broker id (``KC-API-PARTNER*``), signed with ccxt's own
broker key (published in ccxt's source) over the timestamp and the API key. The adapter
remakes that tag from the agent's timestamp and API key, so those headers match ccxt's too.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import pytest

import creds
import diffkit
from diffkit import Sent
from markets import market
import tapsign
import tapsign.aio

MARKETS = [market("BTC/USDT", "BTC-USDT")]


def responder(mode: str) -> Callable[[str, str, Any], Any]:
    def respond(method: str, url: str, body: Any) -> Any:
        """Shapes from KuCoin's API reference."""
        path = url.split("?")[0]
        if path.endswith("/api/ua/v1/account/mode"):
            return {"code": "200000", "data": {"selfAccountMode": mode}}
        if path.endswith("/api/v1/accounts"):
            return {"code": "200000", "data": [{"id": "1", "currency": "USDT", "type": "trade",
                                                "balance": "100", "available": "100", "holds": "0"}]}
        if path.endswith(("/api/v1/orders", "/api/v1/fills")) and method == "GET":
            return {"code": "200000", "data": {"currentPage": 1, "pageSize": 50, "totalNum": 0, "totalPage": 0, "items": []}}
        if "/orders" in path or "/order/" in path:
            return {"code": "200000", "data": {"orderId": "5bd6e9286d99522a52e458de", "cancelledOrderIds": ["5bd6e9286d99522a52e458de"]}}
        return {"code": "200000", "data": {}}

    return respond


def stamps(s: Sent) -> dict:
    return {"ms": int(s.header("KC-API-TIMESTAMP"))}


def compare(a: Sent, b: Sent) -> None:
    assert (a.method, a.url, a.body) == (b.method, b.url, b.body)
    diffkit.same_headers(a.headers, b.headers)


def verify(s: Sent) -> None:
    """base64 HMAC-SHA256 of timestamp + METHOD + path(?query) + body; key version 2, whose
    passphrase header is base64 HMAC-SHA256(secret, passphrase)."""
    ts = s.header("KC-API-TIMESTAMP")
    assert abs(int(ts) - time.time() * 1000) < 30_000
    secret = creds.KUCOIN[1].encode()
    assert s.header("KC-API-KEY") == creds.KUCOIN[0]
    assert s.header("KC-API-KEY-VERSION") == "2"
    assert s.header("KC-API-PASSPHRASE") == diffkit.hmac_b64(secret, creds.KUCOIN[2].encode())
    text = ts + s.method + s.path + ("?" + s.query if s.query else "") + (s.body or "")
    assert s.header("KC-API-SIGN") == diffkit.hmac_b64(secret, text.encode())


CREDS = {"apiKey": creds.KUCOIN[0], "secret": creds.KUCOIN[1], "password": creds.KUCOIN[2]}
SPEC = diffkit.Spec("kucoin", "kucoin-main", CREDS, MARKETS, responder("CLASSIC"), stamps, compare, verify)
UNIFIED = diffkit.Spec("kucoin", "kucoin-main", CREDS, MARKETS, responder("UNIFIED"), stamps, compare, verify)
CALLS = {
    "create_order": lambda ex: ex.create_order("BTC/USDT", "limit", "buy", 0.01, 50000),
    # A unified-account order on a classic account: ccxt repeats tradeType in the URL.
    "create_order_classic_account": lambda ex: ex.create_order(
        "BTC/USDT", "limit", "buy", 0.01, 50000, {"uta": True, "accountMode": "classic"}),
    "cancel_order": lambda ex: ex.cancel_order("5bd6e9286d99522a52e458de", "BTC/USDT"),
    "fetch_balance": lambda ex: ex.fetch_balance(),
    "fetch_open_orders": lambda ex: ex.fetch_open_orders("BTC/USDT"),
    "fetch_my_trades": lambda ex: ex.fetch_my_trades("BTC/USDT"),
    # ccxt pro's stream tokens: a classic account's (negotiate), a unified account's
    # (authenticate_uta), whose `version` ccxt's sign() puts in the path: /api/v2/bullet-private
    # (red-team round 23).
    "stream_token": lambda ex: ex.privatePostBulletPrivate(),
    "stream_token_unified": lambda ex: ex.privatePostBulletPrivate({"version": "v2"}),
}


@pytest.mark.parametrize("call", sorted(CALLS))
def test_kucoin(call: str, agent: tapsign.Agent) -> None:
    diffkit.check(SPEC, CALLS[call], agent)


@pytest.mark.parametrize("call", ["create_order", "fetch_balance"])
def test_kucoin_unified_account(call: str, agent: tapsign.Agent) -> None:
    diffkit.check(UNIFIED, CALLS[call], agent)


@pytest.mark.parametrize("call", ["create_order", "cancel_order"])
def test_kucoin_async(call: str, world: Any) -> None:
    diffkit.check(SPEC, CALLS[call], tapsign.aio.Agent(world.sock), use_async=True)


FUTURES_MARKETS = [market("BTC/USDT:USDT", "XBTUSDTM", "swap", settle="USDT", settle_id="USDT", linear=True,
                          contract_size=0.001, amount=1, price=0.1)]
FUTURES = diffkit.Spec("kucoinfutures", "kucoin-main", CREDS, FUTURES_MARKETS, responder("CLASSIC"), stamps, compare, verify)
FUTURES_CALLS = {
    "create_order": lambda ex: ex.create_order("BTC/USDT:USDT", "limit", "buy", 1, 50000, {"leverage": 5}),
    "cancel_order": lambda ex: ex.cancel_order("5bd6e9286d99522a52e458de", "BTC/USDT:USDT"),
    "fetch_positions": lambda ex: ex.fetch_positions(["BTC/USDT:USDT"]),
}


@pytest.mark.parametrize("call", sorted(FUTURES_CALLS))
def test_kucoin_futures(call: str, agent: tapsign.Agent) -> None:
    """api-futures.kucoin.com, with ccxt's futures broker tag."""
    sent = diffkit.check(FUTURES, FUTURES_CALLS[call], agent)
    assert any(s.host == "api-futures.kucoin.com" for s in sent)
