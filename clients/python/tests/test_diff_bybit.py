"""Bybit (v5, unified account) through the ccxt adapter, against ccxt's own signing with the
real secret and against Bybit's documented scheme. Everything is compared byte for byte: the
agent's four X-BAPI headers are ccxt's at the same timestamp (ccxt's default recvWindow, 5000,
is the agent's default cap).

Refused by the agent, by design: ccxt's first private call on a Bybit instance asks
``GET /v5/user/query-api`` (API-key details) to learn whether the account is unified, and the
agent never signs ``/v5/user/**`` (key and sub-account management). Bots set ccxt's own
options ``enableUnifiedAccount``/``enableUnifiedMargin`` instead (the README says so); these
tests do, and ``test_ccxt_account_probe_is_refused`` pins the refusal.
"""

from __future__ import annotations

from typing import Any

import ccxt
import pytest

import creds
import diffkit
from diffkit import Sent
from markets import market
from tapsign.ccxt import attach
import tapsign
import tapsign.aio

MARKETS = [
    market("BTC/USDT", "BTCUSDT"),
    market("BTC/USDT:USDT", "BTCUSDT", "swap", settle="USDT", settle_id="USDT", linear=True,
           contract_size=1, amount=0.001, price=0.1),
]
UTA = {"options": {"enableUnifiedAccount": True, "enableUnifiedMargin": False}}


def ok(result: Any) -> Any:
    return {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": 1700000000000}


def respond(method: str, url: str, body: Any) -> Any:
    """Shapes from Bybit's v5 reference."""
    path = url.split("?")[0]
    if path.endswith(("/v5/order/create", "/v5/order/cancel")):
        return ok({"orderId": "1321003749386327552", "orderLinkId": ""})
    if path.endswith("/v5/account/wallet-balance"):
        return ok({"list": [{"accountType": "UNIFIED", "totalEquity": "100", "coin": [
            {"coin": "USDT", "walletBalance": "100", "locked": "0", "equity": "100"}]}]})
    if path.endswith(("/v5/order/realtime", "/v5/position/list")):
        return ok({"list": [], "category": "linear", "nextPageCursor": ""})
    if path.endswith("/v5/position/set-leverage"):
        return ok({})
    return ok({})


def stamps(s: Sent) -> dict:
    return {"ms": int(s.header("X-BAPI-TIMESTAMP"))}


def compare(a: Sent, b: Sent) -> None:
    assert (a.method, a.url, a.body) == (b.method, b.url, b.body)
    diffkit.same_headers(a.headers, b.headers)


def verify(s: Sent) -> None:
    """HMAC-SHA256 hex of timestamp + apiKey + recvWindow + (query for GET | body for POST)."""
    ts, recv = s.header("X-BAPI-TIMESTAMP"), s.header("X-BAPI-RECV-WINDOW")
    assert s.header("X-BAPI-API-KEY") == creds.BYBIT[0]
    assert recv == "5000"
    payload = s.body if s.method == "POST" else s.query
    text = ts + creds.BYBIT[0] + recv + (payload or "")
    assert s.header("X-BAPI-SIGN") == diffkit.hmac_hex(creds.BYBIT[1].encode(), text.encode())


SPEC = diffkit.Spec("bybit", "bybit-main", {"apiKey": creds.BYBIT[0], "secret": creds.BYBIT[1]},
                    MARKETS, respond, stamps, compare, verify, config=UTA)
CALLS = {
    "create_order": lambda ex: ex.create_order("BTC/USDT:USDT", "limit", "buy", 0.01, 50000),
    "create_spot_order": lambda ex: ex.create_order("BTC/USDT", "limit", "buy", 0.01, 50000),
    "cancel_order": lambda ex: ex.cancel_order("1321003749386327552", "BTC/USDT:USDT"),
    "fetch_balance": lambda ex: ex.fetch_balance(),
    "fetch_open_orders": lambda ex: ex.fetch_open_orders("BTC/USDT:USDT"),
    "set_leverage": lambda ex: ex.set_leverage(5, "BTC/USDT:USDT"),
    "fetch_positions": lambda ex: ex.fetch_positions(["BTC/USDT:USDT"]),
}


@pytest.mark.parametrize("call", sorted(CALLS))
def test_bybit(call: str, agent: tapsign.Agent) -> None:
    diffkit.check(SPEC, CALLS[call], agent)


@pytest.mark.parametrize("call", ["create_order", "fetch_positions"])
def test_bybit_async(call: str, world: Any) -> None:
    diffkit.check(SPEC, CALLS[call], tapsign.aio.Agent(world.sock), use_async=True)


def test_ccxt_account_probe_is_refused(agent: tapsign.Agent) -> None:
    ex, rec = diffkit.instance(ccxt.bybit, MARKETS, respond)
    attach(ex, key="bybit-main", agent=agent)
    with pytest.raises(ccxt.PermissionDenied) as refused:
        ex.create_order("BTC/USDT:USDT", "limit", "buy", 0.01, 50000)
    assert isinstance(refused.value, tapsign.PolicyDenied)
    assert "/v5/user/query-api" in str(refused.value)
    # What ccxt asked it for, and the options that spare it (red-team round 26, F7).
    assert "ccxt asks this itself" in str(refused.value)
    assert "'enableUnifiedAccount': True" in str(refused.value)
    assert rec.sent == [], "nothing is sent once the agent refuses"
