"""Per exchange: which parts of a request ccxt built are ccxt's own authentication, to be
removed before the agent signs. Pure functions over plain request dicts, no ccxt import.

ccxt builds a private request with placeholder credentials and with its signing primitives
replaced by :data:`UNSIGNED` (see ``tapsign.ccxt``), so nothing it produces is a signature.
What is left to do here is to take out every trace of its authentication: the API-key,
signature, timestamp and nonce headers and parameters. The agent then stamps its own time and
nonce and signs the remaining bytes, which are ccxt's, unchanged.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple
from urllib.parse import unquote, urlsplit

from .. import errors

# What ccxt's hmac/jwt/rsa/eddsa/ecdsa return on an attached instance.
UNSIGNED = "tapsign-unsigned"
# Credentials an attached instance holds: they pass ccxt's check_required_credentials and
# sign nothing (the primitives above never see them as keys). Any of these reaching the
# network would be a bug, and a request carrying one is refused before it is sent.
PLACEHOLDER = "tapsign-placeholder"
PLACEHOLDER_KEY = PLACEHOLDER + "-api-key"
PLACEHOLDER_PASSWORD = PLACEHOLDER + "-passphrase"
# Valid base64: ccxt decodes the Kraken and Coinbase secrets before using them.
PLACEHOLDER_SECRET = base64.b64encode(b"tapsign-placeholder: the agent holds the secret").decode()
MARKERS = (UNSIGNED, PLACEHOLDER, PLACEHOLDER_SECRET)


@dataclass
class Unsigned:
    """A request with ccxt's authentication taken out: what the agent is asked to sign."""

    method: str
    base: str  # scheme://host
    path: str
    query: str
    body: Optional[str]
    headers: Dict[str, str]


def split_url(url: str) -> Tuple[str, str, str]:
    u = urlsplit(url)
    return f"{u.scheme}://{u.netloc}", u.path, u.query


def drop_params(s: str, names: Tuple[str, ...]) -> str:
    """``a=1&timestamp=2&b=3`` without the named parameters, the rest byte for byte."""
    if not s:
        return s
    kept = [p for p in s.split("&") if p.split("=", 1)[0] not in names]
    return "&".join(kept)


def drop_headers(headers: Optional[Dict[str, str]], names: Tuple[str, ...]) -> Dict[str, str]:
    lower = {n.lower() for n in names}
    return {k: v for k, v in (headers or {}).items() if k.lower() not in lower}


# What a value of a raw-query exchange may not hold once decoded: '&', '=', '#', '%', '+' and
# whitespace would read as the query's own syntax (ccxt encodes a space as %20, so a decoded
# '+' was a '+'), and HTTP clients encode an apostrophe, a control or a non-ASCII character
# again on the way out, so the exchange would hash other bytes than the agent signed.
_NOT_UNENCODED = re.compile(r"[&=#%+'\s]|[^\x21-\x7e]")
REFUSED_UNENCODED = "& = # % + ' or a space, control or non-ASCII character"


def unencoded_query(query: str, exchange: str) -> str:
    """Upbit and Bithumb hash the query unencoded and want it sent the same way, and Gate and
    Bitget verify it decoded; ccxt percent-encodes it. Decode it, unless a value would then be ambiguous in a query string
    (``identifier=grid%231`` would be signed and sent as ``identifier=grid``) or be re-encoded
    on the way out: refused with :class:`tapsign.BadRequest` before the agent is asked."""
    pieces = []
    for piece in query.split("&"):
        parts = []
        for part in piece.split("="):
            try:
                plain: Optional[str] = unquote(part, errors="strict")
            except UnicodeDecodeError:
                plain = None
            if plain is None or _NOT_UNENCODED.search(plain):
                raise errors.BadRequest(
                    f"{exchange} signs the query unencoded, and {part!r} cannot be sent "
                    f"unencoded: a value there may not contain {REFUSED_UNENCODED}",
                    "bad_request",
                )
            parts.append(plain)
        pieces.append("=".join(parts))
    return "&".join(pieces)


def carries_marker(*parts: object) -> bool:
    for part in parts:
        if isinstance(part, dict):
            if carries_marker(*part.keys(), *part.values()):
                return True
        elif isinstance(part, (str, bytes)):
            text = part.decode("latin-1") if isinstance(part, bytes) else part
            if any(m in text for m in MARKERS):
                return True
    return False


@dataclass(frozen=True)
class Rule:
    """How one exchange's ccxt requests carry authentication."""

    scheme: str  # the agent's exchange name for the key
    auth_headers: Tuple[str, ...]  # removed, case-insensitive
    expect_header: str  # the agent's answer must carry it, or the key is another exchange's
    params: Tuple[str, ...] = ()  # removed from the query and a form body
    # ccxt signs the unencoded query but sends it encoded; the exchange hashes the unencoded
    # form, so that is what the agent must sign and what is sent (Upbit: `states[]=wait`).
    raw_query: bool = False
    body_nonce: bool = False  # Kraken: ccxt's nonce leads the body
    # OKX: ccxt's spot stop-loss and take-profit go to the agent with `tdMode` `cash`
    # (okx_spot_algo_cash).
    spot_algo_cash: bool = False
    # ccxt's load_markets makes signed account reads here whenever the instance holds
    # credentials (the placeholders count): attach turns them off (_skip_signed_market_reads).
    signed_market_reads: bool = False
    placeholder_key: str = PLACEHOLDER_KEY


_KRAKEN_JSON_NONCE = re.compile(r'^\{"nonce":"?[0-9]+"?,?')
_KRAKEN_FORM_NONCE = ("nonce",)


def strip(rule: Rule, req: Dict[str, object]) -> Unsigned:
    """ccxt's request (``url``, ``method``, ``body``, ``headers``) without its authentication."""
    base, path, query = split_url(str(req["url"]))
    body = req.get("body")
    if body is not None and not isinstance(body, str):
        raise ValueError(f"a {type(body).__name__} body cannot be signed byte for byte")
    query = drop_params(query, rule.params)
    if body is not None and rule.params and not body.lstrip().startswith(("{", "[")):
        body = drop_params(body, rule.params)
    if rule.body_nonce and body is not None:
        if body.startswith("{"):
            body = _KRAKEN_JSON_NONCE.sub("{", body, count=1)
        else:
            body = drop_params(body, _KRAKEN_FORM_NONCE)
    if rule.spot_algo_cash and body is not None:
        body = okx_spot_algo_cash(str(req["method"]), path, body)
    if rule.raw_query:
        query = unencoded_query(query, rule.scheme.capitalize())
    headers = drop_headers(req.get("headers"), rule.auth_headers)  # type: ignore[arg-type]
    return Unsigned(str(req["method"]), base, path, query, body, headers)


def okx_spot_algo_cash(method: str, path: str, body: str) -> str:
    """ccxt's OKX spot stop-loss or take-profit with the ``tdMode`` it meant: ``cash``.

    ccxt 4.5 writes ``tdMode`` ``cash`` for a spot order, then overwrites it with its margin
    mode (``options["defaultMarginMode"]``, ``cross`` unless set) on ``conditional`` and
    ``oco`` algo orders (what ``stopLossPrice`` and ``takeProfitPrice`` place), citing an OKX
    error 51000 of old. On a spot pair ``cross`` is a margin order, which borrows what the
    balance does not cover, and the agent refuses it unless the key's config says
    ``margin = true`` (docs/policy.md, "Borrowing"): a bot's ordinary stop-loss was refused
    (red-team round 22). ccxt puts ``ccy`` in whenever margin was asked for (``marginMode`` or
    ``margin`` in params), so a body without it is a spot order that asked for none: ``cash``
    goes to the agent instead, that one value changed and every other byte as ccxt wrote it
    (the agent signs what is sent). A body that asked for margin, or any other, is left as it
    is. The Node adapter does the same."""
    if method != "POST" or path != "/api/v5/trade/order-algo":
        return body
    try:
        order = json.loads(body)
    except ValueError:
        return body
    if not isinstance(order, dict):
        return body
    inst, mode = order.get("instId"), order.get("tdMode")
    spot_pair = isinstance(inst, str) and re.fullmatch(r"[^-]+-[^-]+", inst) is not None
    if (
        not spot_pair
        or mode not in ("cross", "isolated")
        or order.get("ordType") not in ("conditional", "oco")
        or "ccy" in order
    ):
        return body
    # One `tdMode`, written as ccxt writes it: the bytes to change are that value's alone.
    was = '"tdMode":' + json.dumps(mode)
    if body.count('"tdMode"') != 1 or was not in body:
        return body
    cash = body.replace(was, '"tdMode":"cash"', 1)
    # Only ccxt's compact JSON is edited: the result must read as the same order with `cash`.
    try:
        edited = json.loads(cash)
    except ValueError:
        return body
    return cash if edited == {**order, "tdMode": "cash"} else body


RULES: Dict[str, Rule] = {
    "upbit": Rule("upbit", ("Authorization",), "Authorization", raw_query=True),
    "bithumb": Rule(
        "bithumb",
        ("Authorization", "Api-Key", "Api-Sign", "Api-Nonce"),
        "Authorization",
        raw_query=True,
    ),
    "binance": Rule(
        "binance",
        ("X-MBX-APIKEY",),
        "X-MBX-APIKEY",
        params=("timestamp", "signature"),
        # GET /sapi/v1/capital/config/getall, /sapi/v1/margin/allPairs, .../isolated/allPairs
        signed_market_reads=True,
    ),
    "bybit": Rule(
        "bybit",
        ("X-BAPI-API-KEY", "X-BAPI-TIMESTAMP", "X-BAPI-RECV-WINDOW", "X-BAPI-SIGN", "X-BAPI-SIGN-TYPE"),
        "X-BAPI-SIGN",
        signed_market_reads=True,  # GET /v5/asset/coin/query-info
    ),
    "okx": Rule(
        "okx",
        ("OK-ACCESS-KEY", "OK-ACCESS-PASSPHRASE", "OK-ACCESS-TIMESTAMP", "OK-ACCESS-SIGN"),
        "OK-ACCESS-SIGN",
        spot_algo_cash=True,
        signed_market_reads=True,  # GET /api/v5/asset/currencies
    ),
    "coinbase": Rule(
        "coinbase",
        ("Authorization", "CB-ACCESS-KEY", "CB-ACCESS-SIGN", "CB-ACCESS-TIMESTAMP"),
        "Authorization",
        # Selects ccxt's CDP (Advanced Trade) key path, the one the agent signs for.
        placeholder_key="organizations/" + PLACEHOLDER + "/apiKeys/" + PLACEHOLDER,
    ),
    "kraken": Rule("kraken", ("API-Key", "API-Sign"), "API-Sign", body_nonce=True),
    # Gate verifies the query decoded (docs/exchanges.md, Gate): taken unencoded, as Upbit's.
    "gate": Rule("gate", ("KEY", "Timestamp", "SIGN"), "SIGN", raw_query=True),
    "kucoin": Rule(
        "kucoin",
        (
            "KC-API-KEY",
            "KC-API-SIGN",
            "KC-API-TIMESTAMP",
            "KC-API-PASSPHRASE",
            "KC-API-KEY-VERSION",
            # ccxt's broker tag, signed with ccxt's broker key over the timestamp and the API
            # key: remade after the agent answers (see kucoin_partner).
            "KC-API-PARTNER",
            "KC-API-PARTNER-SIGN",
            "KC-API-PARTNER-VERIFY",
            "KC-BROKER-NAME",
        ),
        "KC-API-SIGN",
    ),
    # Bitget verifies the query decoded, as ccxt signs it (docs/exchanges.md, Bitget): taken
    # unencoded, as Gate's (red-team round 22: signed encoded, a value that needs encoding was
    # signed over other bytes than Bitget hashes).
    "bitget": Rule(
        "bitget",
        ("ACCESS-KEY", "ACCESS-SIGN", "ACCESS-TIMESTAMP", "ACCESS-PASSPHRASE"),
        "ACCESS-SIGN",
        raw_query=True,
    ),
}

# ccxt ids the adapter knows, by their agent scheme: exactly these ids, not the classes ccxt
# derives from them for other companies' hosts (the Node adapter's BY_CCXT_ID is the same).
IDS: Dict[str, str] = {
    "upbit": "upbit",
    "bithumb": "bithumb",
    "binance": "binance",
    "binanceusdm": "binance",
    "binancecoinm": "binance",
    "bybit": "bybit",
    "okx": "okx",
    "myokx": "okx",
    "okxus": "okx",
    "coinbase": "coinbase",
    "coinbaseadvanced": "coinbase",
    "kraken": "kraken",
    "gate": "gate",
    "gateio": "gate",
    "kucoin": "kucoin",
    "kucoinfutures": "kucoin",
    "bitget": "bitget",
}

# The Binance calls ccxt's ``sign`` sends with the API key alone, no signature: those whose
# ccxt ``path`` (relative to its API family: listenKey on /fapi, /dapi, /eapi, /papi;
# userDataStream on /api and /sapi) is one of these. Binance refuses unread parameters on them
# (-1104), so they are not sent to the agent to sign: the API key is taken from an earlier
# signed answer instead. ccxt signs the paths that merely end like these
# (``equity/listenKey``, ``userDataStream/isolated``), and so they go to the agent.
BINANCE_KEY_ONLY = frozenset({"historicalTrades", "userDataStream", "listenKey", "userListenToken"})

PostFix = Callable[[Dict[str, str], Dict[str, object]], Dict[str, str]]
