"""Gate (APIv4) through the ccxt adapter, against ccxt's own signing with the real secret and
against Gate's documented scheme. Everything is compared byte for byte. ccxt's first private
call asks ``GET /api/v4/account/detail`` to learn whether the account is unified; it is signed
and compared like the rest.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import pytest

import creds
import diffkit
from diffkit import Sent
from markets import market
import tapsign
import tapsign.aio

MARKETS = [
    market("BTC/USDT", "BTC_USDT"),
    market("BTC/USDT:USDT", "BTC_USDT", "swap", settle="USDT", settle_id="usdt", linear=True,
           contract_size=0.0001, amount=1, price=0.1),
]
ORDER = {"id": "12345", "text": "t-1", "create_time_ms": 1700000000000, "currency_pair": "BTC_USDT",
         "status": "open", "type": "limit", "account": "spot", "side": "buy", "amount": "0.01",
         "price": "50000", "left": "0.01", "filled_total": "0", "fee": "0"}


def respond(method: str, url: str, body: Any) -> Any:
    """Shapes from Gate's APIv4 reference."""
    path = url.split("?")[0]
    if path.endswith("/account/detail"):
        return {"user_id": 1667201533, "key": {"mode": 1}, "tier": 2}
    if path.endswith("/spot/accounts"):
        return [{"currency": "USDT", "available": "100", "locked": "0"}]
    if path.endswith(("/spot/open_orders", "/spot/my_trades")):
        return []
    if path.endswith("/batch_orders"):
        return [{"id": 15675394 + i, "contract": "BTC_USDT", "size": 1, "price": "50000", "status": "open",
                 "create_time": 1700000000.1, "left": 1, "succeeded": True} for i in range(2)]
    if "/futures/" in path:
        return {"id": 15675394, "contract": "BTC_USDT", "size": 1, "price": "50000", "status": "open",
                "create_time": 1700000000.1, "left": 1}
    return ORDER


def stamps(s: Sent) -> dict:
    return {"ms": int(s.header("Timestamp")) * 1000}


def compare(a: Sent, b: Sent) -> None:
    assert (a.method, a.url, a.body) == (b.method, b.url, b.body)
    diffkit.same_headers(a.headers, b.headers)


def verify(s: Sent) -> None:
    """hex HMAC-SHA512 of METHOD\\n/api/v4/path\\nquery\\nhex(SHA-512(body))\\ntimestamp."""
    ts = s.header("Timestamp")
    assert abs(int(ts) - time.time()) < 30
    assert s.header("KEY") == creds.GATE[0]
    assert s.path.startswith("/api/v4/")
    text = "\n".join([s.method, s.path, s.query, hashlib.sha512((s.body or "").encode()).hexdigest(), ts])
    assert s.header("SIGN") == diffkit.hmac_hex(creds.GATE[1].encode(), text.encode(), hashlib.sha512)


SPEC = diffkit.Spec("gate", "gate-main", {"apiKey": creds.GATE[0], "secret": creds.GATE[1]},
                    MARKETS, respond, stamps, compare, verify)
CALLS = {
    "create_order": lambda ex: ex.create_order("BTC/USDT", "limit", "buy", 0.01, 50000),
    "create_swap_order": lambda ex: ex.create_order("BTC/USDT:USDT", "limit", "buy", 1, 50000),
    "cancel_order": lambda ex: ex.cancel_order("12345", "BTC/USDT"),
    "fetch_balance": lambda ex: ex.fetch_balance(),
    "fetch_open_orders": lambda ex: ex.fetch_open_orders("BTC/USDT"),
    "fetch_my_trades": lambda ex: ex.fetch_my_trades("BTC/USDT"),
    # ccxt 4.5 writes `settle` and `textIsRequired` into each order of a batch, and the spot
    # amend's `currency_pair` and `account` into a futures amend.
    "create_swap_orders": lambda ex: ex.create_orders([
        {"symbol": "BTC/USDT:USDT", "type": "limit", "side": "buy", "amount": 1, "price": 50000},
        {"symbol": "BTC/USDT:USDT", "type": "limit", "side": "sell", "amount": 1, "price": 60000},
    ]),
    "edit_swap_order": lambda ex: ex.edit_order("123", "BTC/USDT:USDT", "limit", "buy", 1, 51000),
    # A spot batch: ccxt adds `textIsRequired` to an order without a client id there too.
    "create_spot_orders": lambda ex: ex.create_orders([
        {"symbol": "BTC/USDT", "type": "limit", "side": "buy", "amount": 1, "price": 50000},
        {"symbol": "BTC/USDT", "type": "limit", "side": "sell", "amount": 1, "price": 60000,
         "params": {"clientOrderId": "t-abc"}},
    ]),
}


@pytest.mark.parametrize("call", sorted(CALLS))
def test_gate(call: str, agent: tapsign.Agent) -> None:
    diffkit.check(SPEC, CALLS[call], agent)


@pytest.mark.parametrize("call", ["create_order", "fetch_balance"])
def test_gate_async(call: str, world: Any) -> None:
    diffkit.check(SPEC, CALLS[call], tapsign.aio.Agent(world.sock), use_async=True)
