"""Upbit through the ccxt adapter, against ccxt's own signing with the real secret and against
Upbit's documented scheme.

Known difference, by design: ccxt signs Upbit's JWT with HS256; the agent signs HS512, which
Upbit now recommends (both are accepted; docs/sources.md, mistake 5). The JWT
header therefore differs in ``alg``, and with it the signature. Everything else is compared
byte for byte: URL, body, other headers, and the claims (same nonce); and ccxt's own JWT
builder, given the real secret and HS512, makes exactly the agent's token.
"""

from __future__ import annotations

from typing import Any

import ccxt
import pytest

import creds
import diffkit
import jwtcheck
from diffkit import Sent
from markets import market
import tapsign
import tapsign.aio

MARKETS = [market("BTC/KRW", "KRW-BTC", amount=0.00000001, price=1000)]
ORDER = {"uuid": "cdd92199-2897-4e14-9448-f923320408ad", "side": "bid", "ord_type": "limit",
         "price": "50000000", "state": "wait", "market": "KRW-BTC", "created_at": "2026-01-01T00:00:00+09:00",
         "volume": "0.01", "remaining_volume": "0.01", "executed_volume": "0", "trades_count": 0}


def respond(method: str, url: str, body: Any) -> Any:
    """Shapes from Upbit's API reference."""
    path = url.split("?")[0]
    if path.endswith("/v1/accounts"):
        return [{"currency": "KRW", "balance": "1000000.0", "locked": "0.0", "avg_buy_price": "0",
                 "avg_buy_price_modified": False, "unit_currency": "KRW"}]
    if path.endswith(("/v1/orders/open", "/v1/orders/closed")):
        return [ORDER]
    return ORDER


def stamps(s: Sent) -> dict:
    _, claims, _, _ = diffkit.jwt_parts(diffkit.bearer(s))
    return {"uuid": claims["nonce"]}


def compare(a: Sent, b: Sent) -> None:
    assert (a.method, a.url, a.body) == (b.method, b.url, b.body)
    diffkit.same_headers(a.headers, b.headers, ignore=("Authorization",))
    head_a, claims_a, _, _ = diffkit.jwt_parts(diffkit.bearer(a))
    head_b, claims_b, _, _ = diffkit.jwt_parts(diffkit.bearer(b))
    assert head_b == {"alg": "HS256", "typ": "JWT"}, "ccxt signs HS256"
    assert head_a == {"alg": "HS512", "typ": "JWT"}, "the agent signs HS512, as Upbit recommends"
    assert claims_a == claims_b
    token = ccxt.Exchange.jwt(claims_b, creds.UPBIT[1].encode(), "sha512")
    assert diffkit.bearer(a) == token, "ccxt's own JWT, HS512, is the agent's byte for byte"


def verify(s: Sent) -> None:
    jwtcheck.verify(s, creds.UPBIT[0], creds.UPBIT[1], "HS512", with_timestamp=False)


SPEC = diffkit.Spec("upbit", "upbit-main", {"apiKey": creds.UPBIT[0], "secret": creds.UPBIT[1]},
                    MARKETS, respond, stamps, compare, verify)
UUID = "cdd92199-2897-4e14-9448-f923320408ad"
CALLS = {
    "create_order": lambda ex: ex.create_order("BTC/KRW", "limit", "buy", 0.01, 50000000),
    "create_market_buy": lambda ex: ex.create_order("BTC/KRW", "market", "buy", None, None, {"cost": 5000}),
    "cancel_order": lambda ex: ex.cancel_order(UUID, "BTC/KRW"),
    "fetch_balance": lambda ex: ex.fetch_balance(),
    "fetch_open_orders": lambda ex: ex.fetch_open_orders("BTC/KRW"),
    "fetch_closed_orders": lambda ex: ex.fetch_closed_orders("BTC/KRW"),
    "fetch_order": lambda ex: ex.fetch_order(UUID),
}


@pytest.mark.parametrize("call", sorted(CALLS))
def test_upbit(call: str, agent: tapsign.Agent) -> None:
    diffkit.check(SPEC, CALLS[call], agent)


@pytest.mark.parametrize("call", ["create_order", "fetch_open_orders"])
def test_upbit_async(call: str, world: Any) -> None:
    diffkit.check(SPEC, CALLS[call], tapsign.aio.Agent(world.sock), use_async=True)
