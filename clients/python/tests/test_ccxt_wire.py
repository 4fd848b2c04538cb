"""What an attached instance puts on the wire, read from the bytes an HTTP server receives: the
signed query goes out byte for byte through ccxt's requests session (no re-encoding), and a
raw-query exchange refuses a value that could not be sent unencoded before the agent is asked."""

from __future__ import annotations

import socket
import threading
from typing import Any, Dict, List, Optional

import ccxt
import pytest

import tapsign
from fakeagent import Conn, FakeAgent, using
from tapsign.ccxt import _rules, attach

HEADERS = {
    "upbit": {"Authorization": "Bearer fake"},
    "bybit": {"X-BAPI-API-KEY": "k", "X-BAPI-TIMESTAMP": "1", "X-BAPI-RECV-WINDOW": "5000", "X-BAPI-SIGN": "s"},
}


def signer(conn: Conn, n: int) -> None:
    """hello, then sign every request: its query and body as sent, and the exchange's headers."""
    if not conn.hello():
        return
    while True:
        msg = conn.read()
        if msg is None:
            return
        conn.send({"type": "signed", "method": msg["method"], "path": msg["path"],
                   "query": msg["query"], "body": msg["body"],
                   "headers": HEADERS[msg["key"]]})


def signs_another_market(conn: Conn, n: int) -> None:
    """hello, then answer every request with another request's signed answer (another market)."""
    if not conn.hello():
        return
    while True:
        msg = conn.read()
        if msg is None:
            return
        conn.send({"type": "signed", "method": msg["method"], "path": msg["path"],
                   "query": msg["query"].replace("KRW-BTC", "KRW-ETH"), "body": msg["body"],
                   "headers": HEADERS[msg["key"]]})


class RawHttp:
    """An HTTP/1.1 server on a raw socket that keeps each request line as bytes."""

    def __init__(self, answer: bytes = b"[]") -> None:
        self.lines: List[bytes] = []
        self.answer = answer
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.base = "http://127.0.0.1:%d" % self.listener.getsockname()[1]
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            with sock:
                f = sock.makefile("rb")
                self.lines.append(f.readline().rstrip(b"\r\n"))
                length = 0
                while True:
                    h = f.readline()
                    if h in (b"\r\n", b"\n", b""):
                        break
                    if h.lower().startswith(b"content-length:"):
                        length = int(h.split(b":", 1)[1])
                f.read(length)
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                             b"Connection: close\r\n\r\n%s" % (len(self.answer), self.answer))

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def http() -> Any:
    server = RawHttp()
    yield server
    server.close()


def attached(cls: Any, key: str, fake: FakeAgent, http: RawHttp, config: Optional[Dict[str, Any]] = None) -> Any:
    ex = cls({"enableRateLimit": False, **(config or {})})
    ex.urls["api"] = {k: http.base for k in ex.urls["api"]}
    return attach(ex, key=key, agent=tapsign.Agent(fake.path))


@using(signer)
def test_upbit_array_query_goes_out_as_signed(fake: FakeAgent, http: RawHttp) -> None:
    ex = attached(ccxt.upbit, "upbit", fake, http)
    ex.private_get_orders_open({"states[]": "wait", "market": "KRW-BTC"})
    assert fake.requests("sign")[0]["query"] == "states[]=wait&market=KRW-BTC"
    assert http.lines == [b"GET /v1/orders/open?states[]=wait&market=KRW-BTC HTTP/1.1"]


@using(signer)
def test_bybit_percent_encoding_goes_out_as_signed(fake: FakeAgent, http: RawHttp) -> None:
    ex = attached(ccxt.bybit, "bybit", fake, http, {"options": {"enableUnifiedAccount": True, "enableUnifiedMargin": False}})
    try:
        # ccxt puts Bybit's values in the query as they are: a bot's own pre-encoded value.
        ex.private_get_v5_order_realtime({"orderLinkId": "a%41b"})
    except ccxt.BaseError:
        pass  # the answer is not Bybit's; the request line is what counts
    assert http.lines == [b"GET /v5/order/realtime?orderLinkId=a%41b HTTP/1.1"]


@using(signs_another_market)
def test_an_answer_to_another_request_is_never_sent(fake: FakeAgent, http: RawHttp) -> None:
    ex = attached(ccxt.upbit, "upbit", fake, http)
    with pytest.raises(ccxt.ExchangeError) as raised:
        ex.private_get_orders_open({"market": "KRW-BTC"})
    assert isinstance(raised.value, tapsign.ProtocolError)
    assert http.lines == [], "nothing is sent"


@using(signer)
def test_public_requests_still_go_through_the_session(fake: FakeAgent, http: RawHttp) -> None:
    ex = attached(ccxt.upbit, "upbit", fake, http)
    ex.private_get_orders_open({"market": "KRW-BTC"})  # wraps the session
    ex.public_get_ticker({"markets": "KRW-BTC"})
    assert http.lines[-1] == b"GET /v1/ticker?markets=KRW-BTC HTTP/1.1"
    assert len(fake.requests("sign")) == 1


@using(signer)
@pytest.mark.parametrize("value", ["grid#1", "x&uuid=cdd92199", "a=b", "a%41b", "a+b", "a b", "o'1", "a\u00e9b", "a\tb"])
def test_raw_query_exchanges_refuse_what_cannot_go_out_unencoded(fake: FakeAgent, http: RawHttp, value: str) -> None:
    for cls, key, call in ((ccxt.upbit, "upbit", "private_delete_order"),
                           (ccxt.bithumb, "bithumb", "private_get_v1_order")):
        ex = attached(cls, key, fake, http)
        with pytest.raises(ccxt.BadRequest) as refused:
            getattr(ex, call)({"identifier": value})
        assert isinstance(refused.value, tapsign.BadRequest)
        assert "& = # % + '" in str(refused.value)
    assert fake.requests("sign") == [], "the agent is never asked"
    assert http.lines == [], "nothing is sent"


def test_unencoded_query_decodes_what_is_unambiguous() -> None:
    q = _rules.unencoded_query
    assert q("states%5B%5D=wait&states%5B%5D=watch", "Upbit") == "states[]=wait&states[]=watch"
    assert q("pairs=KRW-BTC%2CKRW-ETH&limit=10", "Upbit") == "pairs=KRW-BTC,KRW-ETH&limit=10"
    assert q("", "Upbit") == ""
    for bad in ["a=x%26y", "a=x%3Dy", "a=x%23y", "a=x%20y", "a=x%2By", "a=x+y", "a=x%27y", "a=x'y",
                "a=%E2%82%A9", "a=%zz", "a=%FF", "a=x%0Ay"]:
        with pytest.raises(tapsign.BadRequest):
            q(bad, "Upbit")
