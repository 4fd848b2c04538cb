"""The differential harness: run one ccxt call twice, on an instance attached to the agent and
on a plain ccxt instance holding the real secret with its clock, nonce and uuid frozen to the
agent's values, and capture both at ccxt's fetch layer (the HTTP request ccxt would send; the
recorder answers with a canned response and nothing goes over the network).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qsl, urlsplit

Responder = Callable[[str, str, Optional[str]], Any]


@dataclass
class Sent:
    """One HTTP request as ccxt hands it to its HTTP layer."""

    method: str
    url: str
    headers: Dict[str, str]
    body: Optional[str]

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def query(self) -> str:
        return urlsplit(self.url).query

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc

    def header(self, name: str) -> str:
        for k, v in self.headers.items():
            if k.lower() == name.lower():
                return v
        raise AssertionError(f"no {name} header in {self.headers}")

    def params(self) -> Dict[str, str]:
        return dict(parse_qsl(self.query, keep_blank_values=True))


class Recorder:
    """Stands in for ccxt's ``fetch``: records and answers from ``responder``."""

    def __init__(self, responder: Responder) -> None:
        self.sent: List[Sent] = []
        self.responder = responder

    def record(self, url: str, method: str, headers: Optional[Dict[str, str]], body: Any) -> Any:
        assert body is None or isinstance(body, str), f"body of type {type(body)}"
        self.sent.append(Sent(method, url, dict(headers or {}), body))
        return self.responder(method, url, body)

    def sync(self) -> Callable[..., Any]:
        def fetch(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
            return self.record(url, method, headers, body)

        return fetch

    def aio(self) -> Callable[..., Any]:
        async def fetch(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
            return self.record(url, method, headers, body)

        return fetch


FIXED_CLIENT_ID = "0123456789abcdef"
FIXED_UUID = "8f0e1c2a-3b4d-4e5f-8a6b-7c8d9e0f1a2b"


def instance(cls: Any, markets: List[Dict[str, Any]], responder: Responder, config: Optional[Dict[str, Any]] = None) -> Tuple[Any, Recorder]:
    """A ccxt instance with markets set, fetch recorded, and ccxt's random client order ids
    fixed (they are part of the signed body, so both sides must draw the same)."""
    ex = cls({"enableRateLimit": False, **(config or {})})
    rec = Recorder(responder)
    is_async = asyncio.iscoroutinefunction(ex.fetch)
    ex.fetch = rec.aio() if is_async else rec.sync()
    ex.set_markets(markets)
    ex.uuid16 = lambda *a: FIXED_CLIENT_ID
    ex.uuid = lambda: FIXED_UUID  # KuCoin's clientOid; Upbit/Bithumb nonces are frozen per request
    ex.uuid22 = lambda *a: FIXED_CLIENT_ID + "ghijkl"
    return ex, rec


def freeze(ex: Any, ms: Optional[int] = None, uuid: Optional[str] = None, random_bytes: Optional[str] = None, nonce: Optional[int] = None) -> None:
    """Freeze a reference instance's clock and random sources to the agent's values."""
    if ms is not None:
        ex.milliseconds = lambda: ms
        ex.seconds = lambda: ms // 1000
        ex.microseconds = lambda: ms * 1000
    if uuid is not None:
        ex.uuid = lambda: uuid
    if random_bytes is not None:
        ex.random_bytes = lambda n: random_bytes
    if nonce is not None:
        ex.incrementing_nonce = lambda: nonce
        ex.nonce = lambda: nonce


def run(ex: Any, call: Callable[[Any], Any]) -> Any:
    result = call(ex)
    if asyncio.iscoroutine(result):
        return asyncio.run(_close_after(ex, result))
    return result


async def _close_after(ex: Any, coro: Any) -> Any:
    try:
        return await coro
    finally:
        await ex.close()


# ------------------------------------------------------------------ independent primitives


def hmac_hex(secret: bytes, msg: bytes, algo: Any = hashlib.sha256) -> str:
    return hmac.new(secret, msg, algo).hexdigest()


def hmac_b64(secret: bytes, msg: bytes, algo: Any = hashlib.sha256) -> str:
    return base64.b64encode(hmac.new(secret, msg, algo).digest()).decode()


def b64url_decode(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def jwt_parts(token: str) -> Tuple[Dict[str, Any], Dict[str, Any], bytes, bytes]:
    """header, claims, signing input, signature of a compact JWT."""
    h, c, s = token.split(".")
    return json.loads(b64url_decode(h)), json.loads(b64url_decode(c)), f"{h}.{c}".encode(), b64url_decode(s)


def bearer(sent: Sent) -> str:
    auth = sent.header("Authorization")
    assert auth.startswith("Bearer "), auth
    return auth[len("Bearer "):]


def same_headers(a: Dict[str, str], b: Dict[str, str], ignore: Tuple[str, ...] = ()) -> None:
    """Equal header sets (names case-insensitive), values byte for byte."""
    drop = {n.lower() for n in ignore}
    la = {k.lower(): v for k, v in a.items() if k.lower() not in drop}
    lb = {k.lower(): v for k, v in b.items() if k.lower() not in drop}
    assert la == lb, f"headers differ:\n adapter {la}\n ccxt    {lb}"


# ------------------------------------------------------------------ the differential check

Stamps = Dict[str, Any]


@dataclass
class Spec:
    """One exchange under test.

    ``stamps(sent)`` reads the agent's time/nonce/uuid out of a request the adapter sent, as
    keyword arguments for :func:`freeze`; ``compare(adapter, ccxt)`` asserts the two requests
    are the same (and says where and why they may differ); ``verify(sent)`` recomputes the
    signature independently from the exchange's documented scheme.
    """

    ccxt_id: str
    key: str
    creds: Dict[str, str]  # ccxt credential fields of the real secret (apiKey, secret, password)
    markets: List[Dict[str, Any]]
    responder: Responder
    stamps: Callable[[Sent], Stamps]
    compare: Callable[[Sent, Sent], None]
    verify: Callable[[Sent], None]
    config: Optional[Dict[str, Any]] = None
    prepare: Optional[Callable[[Any], None]] = None  # applied to both instances


def _frozen_sign(ref: Any, stamps: List[Stamps]) -> None:
    """Before the reference signs its i-th request, freeze its clock to the agent's i-th."""
    original = ref.sign
    seen = iter(stamps)

    def frozen(*args: Any, **kwargs: Any) -> Any:
        try:
            freeze(ref, **next(seen))
        except StopIteration:
            raise AssertionError("plain ccxt made more requests than the adapter") from None
        return original(*args, **kwargs)

    ref.sign = frozen


def check(spec: Spec, call: Callable[[Any], Any], agent: Any, use_async: bool = False) -> List[Sent]:
    """Run ``call`` through the adapter and through plain ccxt; compare and verify every
    request. Returns the adapter's requests."""
    import ccxt
    import ccxt.async_support
    from tapsign.ccxt import attach

    module = ccxt.async_support if use_async else ccxt
    cls = getattr(module, spec.ccxt_id)
    ex, rec_a = instance(cls, spec.markets, spec.responder, spec.config)
    if spec.prepare:
        spec.prepare(ex)
    attach(ex, key=spec.key, agent=agent)
    run(ex, call)
    sent_a = rec_a.sent
    assert sent_a, "the call sent nothing"

    ref, rec_b = instance(cls, spec.markets, spec.responder, spec.config)
    if spec.prepare:
        spec.prepare(ref)
    for field, value in spec.creds.items():
        setattr(ref, field, value)
    private = [s for s in sent_a if is_private(s)]
    assert private, "the call sent no private request"
    _frozen_sign(ref, [spec.stamps(s) if is_private(s) else {} for s in sent_a])
    run(ref, call)
    sent_b = rec_b.sent
    assert len(sent_a) == len(sent_b), f"{len(sent_a)} requests through the adapter, {len(sent_b)} from ccxt"
    for a, b in zip(sent_a, sent_b):
        if is_private(a):
            spec.compare(a, b)
            spec.verify(a)
        else:
            assert (a.method, a.url, a.headers, a.body) == (b.method, b.url, b.headers, b.body)
    return sent_a


AUTH_HEADERS = (
    "authorization", "x-mbx-apikey", "x-bapi-sign", "ok-access-sign", "api-sign", "sign",
    "kc-api-sign", "access-sign",
)


def is_private(s: Sent) -> bool:
    return any(k.lower() in AUTH_HEADERS for k in s.headers)
