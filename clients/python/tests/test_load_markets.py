"""What an attached instance's ``load_markets`` asks of the agent, against the pinned ccxt's own
code: the README's "Public data, and what load_markets signs" says the same, exchange by
exchange (red-team round 24, K1: with the placeholders ccxt believed it held a key, so Binance's
and OKX's first ``load_markets`` made a signed currency read, and while the agent was locked a
bot could not even read a ticker)."""

from __future__ import annotations

from typing import Any, Dict, List

import ccxt
import pytest

import tapsign
from agentworld import World
from diffkit import Recorder
from tapsign._wire import SignedRequest
from tapsign.ccxt import _rules, attach

# Binance's raw exchangeInfo for one spot market, as the public endpoint answers it.
BTCUSDT = {
    "symbol": "BTCUSDT", "status": "TRADING", "baseAsset": "BTC", "quoteAsset": "USDT",
    "baseAssetPrecision": 8, "quotePrecision": 8, "quoteAssetPrecision": 8,
    "orderTypes": ["LIMIT", "MARKET"], "isSpotTradingAllowed": True, "permissions": ["SPOT"],
    "filters": [{"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000", "tickSize": "0.01"},
                {"filterType": "LOT_SIZE", "minQty": "0.00001", "maxQty": "9000", "stepSize": "0.00001"}],
}

# The signed reads ccxt makes in load_markets once an instance holds credentials, after attach.
# Binance's, OKX's and Bybit's are turned off by attach. These are left as ccxt makes them:
# Gate's and Bitget's learn the account's mode, which attach cannot know; KuCoin's learn the
# mode and the margin pairs; Coinbase's reads the fee tier for the markets' fees, with no switch.
KUCOIN = [
    "GET /api/ua/v1/account/mode",
    "GET /api/v3/margin/symbols",
    "GET /api/v1/isolated/symbols",
    "GET /api/v1/hf/accounts/opened",
]
SIGNED_IN_LOAD_MARKETS: Dict[str, List[str]] = {
    "coinbase": ["GET /api/v3/brokerage/transaction_summary"],
    "kucoin": KUCOIN,
    "kucoinfutures": KUCOIN,
    "gate": ["GET /api/v4/account/detail"],
    "bitget": ["GET /api/v3/account/settings"],
}
# The README's way to name the account mode, so that load_markets asks nothing.
ACCOUNT_MODE = {
    "gate": {"unifiedAccount": False},
    "bitget": {"uta": False},
}


class Recording(tapsign.Agent):
    """Notes what it is asked to sign and answers with a stand-in signature (every public and
    private answer is empty), so ccxt goes on to its next read; ``locked`` answers as a locked
    agent does instead."""

    def __init__(self, expect_header: str = "", locked: bool = False) -> None:
        super().__init__("/nonexistent/agent.sock")
        self.asked: List[str] = []
        self.expect_header = expect_header
        self.locked = locked

    def sign(self, key: str, method: str, path: str, query: str = "", body: str = "", **kw: Any) -> Any:
        self.asked.append(f"{method} {path}")
        if self.locked:
            raise tapsign.Locked("the agent is locked: run `tapsign unlock`", "locked")
        return SignedRequest(method, path, query, body, {self.expect_header: "stand-in"})


def asked_by_load_markets(ccxt_id: str, options: Dict[str, Any]) -> List[str]:
    ex = getattr(ccxt, ccxt_id)({"enableRateLimit": False, "options": options})
    ex.fetch = Recorder(lambda m, u, b: {}).sync()  # every public answer empty: no markets
    agent = Recording(_rules.RULES[_rules.IDS[ccxt_id]].expect_header)
    attach(ex, key="k", agent=agent)
    ex.load_markets()
    return agent.asked


@pytest.mark.parametrize("ccxt_id", sorted(i for i in _rules.IDS if hasattr(ccxt, i)))
def test_what_load_markets_signs_on_an_attached_instance(ccxt_id: str) -> None:
    assert asked_by_load_markets(ccxt_id, {}) == SIGNED_IN_LOAD_MARKETS.get(ccxt_id, [])
    if ccxt_id in ACCOUNT_MODE:
        assert asked_by_load_markets(ccxt_id, ACCOUNT_MODE[ccxt_id]) == []


@pytest.mark.parametrize("ccxt_id", ["binance", "binanceusdm", "binancecoinm", "okx", "bybit"])
def test_attach_turns_off_the_signed_market_reads_and_a_bot_can_turn_them_on(ccxt_id: str) -> None:
    ex = getattr(ccxt, ccxt_id)({"enableRateLimit": False})
    ex.fetch = Recorder(lambda m, u, b: {}).sync()
    agent = Recording(locked=True)
    attach(ex, key="k", agent=agent)
    ex.has["fetchCurrencies"] = True
    if "fetchMargins" in ex.options:
        ex.options["fetchMargins"] = True
    with pytest.raises(tapsign.Locked):
        ex.load_markets()
    assert agent.asked, "the README's way back to ccxt's reads"


def test_a_locked_agent_loads_markets_and_reads_a_binance_ticker(fresh_world: World) -> None:
    # K1 as the bot sees it: the agent locked before the bot starts.
    def answer(method: str, url: str, body: Any) -> Any:
        path = url.split("?")[0]
        if path.endswith("/api/v3/exchangeInfo"):
            return {"timezone": "UTC", "serverTime": 1, "symbols": [BTCUSDT]}
        if path.endswith("/api/v3/ticker/24hr"):
            return {"symbol": "BTCUSDT", "lastPrice": "50000", "openTime": 1, "closeTime": 2}
        return {}

    agent = tapsign.Agent(fresh_world.sock)
    agent.lock()
    try:
        ex = ccxt.binance({"enableRateLimit": False})
        rec = Recorder(answer)
        ex.fetch = rec.sync()
        attach(ex, key="binance-main", agent=agent)
        assert ex.fetch_ticker("BTC/USDT")["last"] == 50000
        assert not any("/sapi/" in s.url for s in rec.sent), [s.url for s in rec.sent]
        with pytest.raises(tapsign.Locked):
            ex.fetch_balance()
    finally:
        fresh_world.unlock()
        agent.close()


@pytest.mark.parametrize("ccxt_id", ["okx", "bybit"])
def test_a_locked_agent_loads_okx_and_bybit_markets(fresh_world: World, ccxt_id: str) -> None:
    agent = tapsign.Agent(fresh_world.sock)
    agent.lock()
    try:
        ex = getattr(ccxt, ccxt_id)({"enableRateLimit": False})
        ex.fetch = Recorder(lambda m, u, b: {}).sync()
        attach(ex, key="binance-main", agent=agent)
        ex.load_markets()  # no Locked: nothing asked of the agent
    finally:
        fresh_world.unlock()
        agent.close()
