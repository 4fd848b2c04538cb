"""OKX (v5) through the ccxt adapter, against ccxt's own signing with the real secret and
against OKX's documented scheme. Everything is compared byte for byte: the agent's four
OK-ACCESS headers are ccxt's at the same timestamp. (ccxt places a single order through
``/api/v5/trade/batch-orders``, to carry its broker tag; that is what is signed.)
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

import pytest

import creds
import diffkit
from diffkit import Sent
from markets import market
import tapsign
import tapsign.aio

MARKETS = [
    market("BTC/USDT", "BTC-USDT"),
    market("BTC/USDT:USDT", "BTC-USDT-SWAP", "swap", settle="USDT", settle_id="USDT", linear=True,
           contract_size=0.01, amount=1, price=0.1),
]


def ok(data: Any) -> Any:
    return {"code": "0", "msg": "", "data": data}


def respond(method: str, url: str, body: Any) -> Any:
    """Shapes from OKX's v5 reference."""
    path = url.split("?")[0]
    if path.endswith(("/trade/batch-orders", "/trade/order", "/trade/cancel-order")):
        return ok([{"ordId": "312269865356374016", "clOrdId": "", "tag": "", "sCode": "0", "sMsg": ""}])
    if path.endswith("/account/balance"):
        return ok([{"uTime": "1700000000000", "totalEq": "100", "details": [
            {"ccy": "USDT", "availBal": "100", "frozenBal": "0", "eq": "100", "cashBal": "100"}]}])
    return ok([])


def stamps(s: Sent) -> dict:
    ts = s.header("OK-ACCESS-TIMESTAMP")
    dt = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    return {"ms": round(dt.timestamp() * 1000)}


def compare(a: Sent, b: Sent) -> None:
    assert (a.method, a.url, a.body) == (b.method, b.url, b.body)
    diffkit.same_headers(a.headers, b.headers)


def verify(s: Sent) -> None:
    """base64 HMAC-SHA256 of timestamp + METHOD + path(?query) + body; passphrase in clear."""
    ts = s.header("OK-ACCESS-TIMESTAMP")
    assert abs(stamps(s)["ms"] - time.time() * 1000) < 30_000
    assert s.header("OK-ACCESS-KEY") == creds.OKX[0]
    assert s.header("OK-ACCESS-PASSPHRASE") == creds.OKX[2]
    text = ts + s.method + s.path + ("?" + s.query if s.query else "") + (s.body or "")
    assert s.header("OK-ACCESS-SIGN") == diffkit.hmac_b64(creds.OKX[1].encode(), text.encode())


SPEC = diffkit.Spec("okx", "okx-main", {"apiKey": creds.OKX[0], "secret": creds.OKX[1], "password": creds.OKX[2]},
                    MARKETS, respond, stamps, compare, verify)
CALLS = {
    "create_order": lambda ex: ex.create_order("BTC/USDT", "limit", "buy", 0.01, 50000),
    "create_swap_order": lambda ex: ex.create_order("BTC/USDT:USDT", "limit", "sell", 1, 50000),
    "cancel_order": lambda ex: ex.cancel_order("312269865356374016", "BTC/USDT"),
    "fetch_balance": lambda ex: ex.fetch_balance(),
    "fetch_open_orders": lambda ex: ex.fetch_open_orders("BTC/USDT"),
    "fetch_positions": lambda ex: ex.fetch_positions(["BTC/USDT:USDT"]),
}


@pytest.mark.parametrize("call", sorted(CALLS))
def test_okx(call: str, agent: tapsign.Agent) -> None:
    diffkit.check(SPEC, CALLS[call], agent)


@pytest.mark.parametrize("call", ["create_order", "fetch_positions"])
def test_okx_async(call: str, world: Any) -> None:
    diffkit.check(SPEC, CALLS[call], tapsign.aio.Agent(world.sock), use_async=True)
