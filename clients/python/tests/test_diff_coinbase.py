"""Coinbase (Advanced Trade, CDP keys) through the ccxt adapter, against ccxt's own signing with
the real secret and against Coinbase's documented scheme.

Known differences, by design: the agent writes the JWT Coinbase's CDP documentation shows
(header ``alg, kid, nonce, typ`` with a 64-hex nonce; claims ``sub, iss="cdp", nbf, exp, uri``);
ccxt writes an older layout (claims ``aud=["retail_rest_api_proxy"], iss="coinbase-cloud",
iat`` besides, a 32-hex nonce). ES256 signatures are randomised, so no two are equal. So the
test compares what both must agree on (URL, body, other headers, key name, ``uri``, ``nbf``,
``exp`` at the same clock), checks the agent's token against the documented layout, and
verifies both tokens' ES256 signatures with the key's public half.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

import creds
import diffkit
from diffkit import Sent
from markets import market
import tapsign
import tapsign.aio

MARKETS = [market("BTC/USD", "BTC-USD", amount=0.00000001, price=0.01)]
ORDER = {"order_id": "0000-000000-000000", "product_id": "BTC-USD", "side": "BUY", "status": "OPEN",
         "created_time": "2026-01-01T00:00:00Z", "order_configuration": {"limit_limit_gtc": {
             "base_size": "0.01", "limit_price": "50000", "post_only": False}}}


def respond(method: str, url: str, body: Any) -> Any:
    """Shapes from Coinbase's Advanced Trade and App references."""
    path = url.split("?")[0]
    if path.endswith("/brokerage/orders") and method == "POST":
        return {"success": True, "success_response": {"order_id": "0000-000000-000000", "product_id": "BTC-USD",
                                                        "side": "BUY"}, "order_configuration": ORDER["order_configuration"]}
    if path.endswith("/batch_cancel"):
        return {"results": [{"success": True, "order_id": "0000-000000-000000"}]}
    if path.endswith("/v2/accounts"):
        return {"pagination": {"next_uri": None}, "data": [{"id": "a1", "currency": {"code": "USD"},
                                                            "balance": {"amount": "100.00", "currency": "USD"},
                                                            "type": "fiat"}]}
    if path.endswith("/orders/historical/batch"):
        return {"orders": [ORDER], "has_next": False, "cursor": ""}
    if path.endswith("/orders/historical/fills"):
        return {"fills": [], "cursor": ""}
    return {}


def stamps(s: Sent) -> dict:
    header, claims, _, _ = diffkit.jwt_parts(diffkit.bearer(s))
    return {"ms": claims["nbf"] * 1000}


def es256_valid(token: str) -> bool:
    _, _, signing_input, sig = diffkit.jwt_parts(token)
    assert len(sig) == 64, "raw r||s"
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    creds.COINBASE_PUBLIC.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
    return True


def compare(a: Sent, b: Sent) -> None:
    assert (a.method, a.url, a.body) == (b.method, b.url, b.body)
    diffkit.same_headers(a.headers, b.headers, ignore=("Authorization",))
    ha, ca, _, _ = diffkit.jwt_parts(diffkit.bearer(a))
    hb, cb, _, _ = diffkit.jwt_parts(diffkit.bearer(b))
    assert (ha["alg"], ha["kid"]) == (hb["alg"], hb["kid"]) == ("ES256", creds.COINBASE_KEY_NAME)
    for claim in ("sub", "nbf", "exp", "uri"):
        assert ca[claim] == cb[claim], claim
    # The layouts differ as the module docstring says; pin ccxt's so a change is noticed.
    assert set(cb) == {"aud", "iss", "nbf", "exp", "sub", "iat", "uri"} and cb["iss"] == "coinbase-cloud"
    assert es256_valid(diffkit.bearer(b)), "ccxt's token, with the real key"


def verify(s: Sent) -> None:
    """CDP JWT: header {alg: ES256, kid: key name, nonce, typ: JWT}; claims {sub: key name,
    iss: cdp, nbf: now, exp: nbf+120, uri: "METHOD api.coinbase.com/path"}; ES256 over
    header.claims, raw r||s, base64url."""
    token = diffkit.bearer(s)
    header, claims, _, _ = diffkit.jwt_parts(token)
    assert header["alg"] == "ES256" and header["typ"] == "JWT" and header["kid"] == creds.COINBASE_KEY_NAME
    assert re.fullmatch(r"[0-9a-f]{64}", header["nonce"])
    assert set(claims) == {"sub", "iss", "nbf", "exp", "uri"}
    assert claims["sub"] == creds.COINBASE_KEY_NAME and claims["iss"] == "cdp"
    assert abs(claims["nbf"] - time.time()) < 30 and claims["exp"] == claims["nbf"] + 120
    assert claims["uri"] == f"{s.method} api.coinbase.com{s.path}"
    assert es256_valid(token)


SPEC = diffkit.Spec("coinbase", "coinbase-main", {"apiKey": creds.COINBASE_KEY_NAME, "secret": creds.COINBASE_PEM},
                    MARKETS, respond, stamps, compare, verify)
CALLS = {
    "create_order": lambda ex: ex.create_order("BTC/USD", "limit", "buy", 0.01, 50000),
    "cancel_order": lambda ex: ex.cancel_order("0000-000000-000000", "BTC/USD"),
    "fetch_balance": lambda ex: ex.fetch_balance(),
    "fetch_open_orders": lambda ex: ex.fetch_open_orders("BTC/USD"),
    "fetch_my_trades": lambda ex: ex.fetch_my_trades("BTC/USD"),
}


@pytest.mark.parametrize("call", sorted(CALLS))
def test_coinbase(call: str, agent: tapsign.Agent) -> None:
    diffkit.check(SPEC, CALLS[call], agent)


@pytest.mark.parametrize("call", ["create_order", "fetch_open_orders"])
def test_coinbase_async(call: str, world: Any) -> None:
    diffkit.check(SPEC, CALLS[call], tapsign.aio.Agent(world.sock), use_async=True)
