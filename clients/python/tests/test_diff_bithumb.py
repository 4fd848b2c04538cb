"""Bithumb (API 2.0, ``/v1`` and ``/v2``) through the ccxt adapter, against ccxt's own signing
with the real secret and against Bithumb's documented scheme.

ccxt 4.5 speaks API 2.0 for all these calls (its ``generation`` option defaults to 2), with the
same JWT as the agent (HS256, claims access_key, nonce, timestamp, query_hash): everything is
compared byte for byte, the Authorization header included.
"""

from __future__ import annotations

from typing import Any

import pytest

import creds
import diffkit
import jwtcheck
from diffkit import Sent
from markets import market
import tapsign
import tapsign.aio

# ccxt's Bithumb rounds amounts by decimal places and prices by significant digits.
MARKETS = [market("BTC/KRW", "BTC_KRW", amount=8, price=4, base_id="BTC", quote_id="KRW")]
ORDER_ID = "C0101000003152350309"
ORDER = {"uuid": ORDER_ID, "side": "bid", "ord_type": "limit", "price": "50000000", "state": "wait",
         "market": "KRW-BTC", "created_at": "2026-01-01T00:00:00+09:00", "volume": "0.01",
         "remaining_volume": "0.01", "executed_volume": "0", "trades_count": 0}


def respond(method: str, url: str, body: Any) -> Any:
    """Shapes from Bithumb's API 2.0 reference."""
    path = url.split("?")[0]
    if path.endswith("/v2/orders") and method == "POST":
        return {"order_id": ORDER_ID, "market": "KRW-BTC", "side": "bid", "order_type": "limit",
                "created_at": "2026-07-04T14:39:04+09:00"}
    if path.endswith("/v2/order") and method == "DELETE":
        return {"order_id": ORDER_ID, "market": "KRW-BTC", "side": "bid", "order_type": "limit"}
    if path.endswith("/v1/accounts"):
        return [{"currency": "KRW", "balance": "51026", "locked": "0", "avg_buy_price": "0",
                 "avg_buy_price_modified": False, "unit_currency": "KRW"}]
    if path.endswith("/v1/orders"):
        return [ORDER]
    return ORDER


def stamps(s: Sent) -> dict:
    _, claims, _, _ = diffkit.jwt_parts(diffkit.bearer(s))
    return {"uuid": claims["nonce"], "ms": claims["timestamp"]}


def compare(a: Sent, b: Sent) -> None:
    assert (a.method, a.url, a.body) == (b.method, b.url, b.body)
    diffkit.same_headers(a.headers, b.headers)  # the JWT too, byte for byte


def verify(s: Sent) -> None:
    jwtcheck.verify(s, creds.BITHUMB[0], creds.BITHUMB[1], "HS256", with_timestamp=True)


SPEC = diffkit.Spec("bithumb", "bithumb-main", {"apiKey": creds.BITHUMB[0], "secret": creds.BITHUMB[1]},
                    MARKETS, respond, stamps, compare, verify)
CALLS = {
    "create_order": lambda ex: ex.create_order("BTC/KRW", "limit", "buy", 0.01, 50000000),
    "cancel_order": lambda ex: ex.cancel_order(ORDER_ID, "BTC/KRW"),
    "fetch_balance": lambda ex: ex.fetch_balance(),
    "fetch_open_orders": lambda ex: ex.fetch_open_orders("BTC/KRW"),
    "fetch_order": lambda ex: ex.fetch_order(ORDER_ID, "BTC/KRW"),
}


@pytest.mark.parametrize("call", sorted(CALLS))
def test_bithumb(call: str, agent: tapsign.Agent) -> None:
    diffkit.check(SPEC, CALLS[call], agent)


@pytest.mark.parametrize("call", ["create_order", "cancel_order"])
def test_bithumb_async(call: str, world: Any) -> None:
    diffkit.check(SPEC, CALLS[call], tapsign.aio.Agent(world.sock), use_async=True)
