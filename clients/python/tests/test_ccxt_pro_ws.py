"""ccxt.pro websockets on an attached instance, against a local websocket server that records
what reaches it: ccxt.pro's own private login (made over the placeholder credentials) is
refused before anything is sent, with a message saying how to log in through the agent, and a
public stream still goes out as ccxt makes it (red-team round 23, P1).

No agent is needed: nothing here is signed.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
from typing import Any, Awaitable, Callable, List, Tuple

import ccxt
import ccxt.pro
import pytest
from aiohttp import WSMsgType, web

import tapsign
import tapsign.aio
from markets import market
from tapsign.ccxt import attach

Got = List[Tuple[str, str, Any]]


class WsServer:
    """Answers every websocket upgrade and records it (path, Authorization header) and each
    frame; any other request is recorded and answered `{}`."""

    def __init__(self) -> None:
        self.got: Got = []
        self.runner: Any = None
        self.port = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self.runner, sock).start()

    async def handle(self, req: web.Request) -> web.StreamResponse:
        if req.headers.get("Upgrade", "").lower() != "websocket":
            self.got.append(("http", req.path_qs, await req.text()))
            return web.json_response({})
        ws = web.WebSocketResponse()
        await ws.prepare(req)
        self.got.append(("open", req.path_qs, req.headers.get("Authorization")))
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                self.got.append(("frame", req.path_qs, msg.data))
        return ws

    def point(self, exchange: Any) -> None:
        """Every REST and websocket URL of ``exchange`` at this server."""

        def rewrite(o: Any) -> Any:
            if isinstance(o, dict):
                return {k: rewrite(v) for k, v in o.items()}
            if isinstance(o, list):
                return [rewrite(v) for v in o]
            if isinstance(o, str):
                o = re.sub(r"^wss://[^/]+", f"ws://127.0.0.1:{self.port}", o)
                o = re.sub(r"^https://[^/]+", f"http://127.0.0.1:{self.port}", o)
            return o

        exchange.urls["api"] = rewrite(exchange.urls["api"])

    def sockets(self) -> Got:
        return [g for g in self.got if g[0] != "http"]


def run(body: Callable[[WsServer], Awaitable[None]]) -> WsServer:
    async def go() -> WsServer:
        server = WsServer()
        await server.start()
        try:
            await body(server)
            await asyncio.sleep(0.2)  # a frame in flight would arrive by now
        finally:
            await server.runner.cleanup()
        return server

    return asyncio.run(go())


def attached(cls: Any, server: WsServer, **config: Any) -> Any:
    # No agent: a login that asked one would fail with AgentNotRunning, not the refusal.
    ex = attach(cls(config), key="k", agent=tapsign.aio.Agent("/nonexistent/tapsign.sock"))
    server.point(ex)
    return ex


def bybit_private_url(ex: Any) -> str:
    return ex.urls["api"]["ws"]["private"]["spot"]["unified"]


# Each call makes ccxt.pro's own login: OKX's `login` op, Bybit's `auth` op, Binance's spot
# `userDataStream.subscribe.signature`, Upbit's bearer token in the websocket handshake.
LOGINS = [
    ("okx", lambda ex: ex.authenticate(), "ws_login"),
    ("bybit", lambda ex: ex.authenticate(bybit_private_url(ex)), "ws_login"),
    ("binance", lambda ex: ex.authenticate(), "session.logon"),
    ("upbit", lambda ex: ex.watch_orders(), "Authorization header"),
]


@pytest.mark.parametrize("exchange_id,login,advice", LOGINS, ids=[x[0] for x in LOGINS])
def test_a_ccxt_pro_login_is_refused_before_anything_is_sent(exchange_id: str, login: Any, advice: str) -> None:
    caught: List[BaseException] = []

    async def body(server: WsServer) -> None:
        ex = attached(getattr(ccxt.pro, exchange_id), server)
        try:
            await asyncio.wait_for(login(ex), 5)
        except BaseException as e:  # noqa: B036 - a timeout would be the bug
            caught.append(e)
        finally:
            await ex.close()

    server = run(body)
    assert len(caught) == 1
    e = caught[0]
    assert isinstance(e, tapsign.PolicyDenied), repr(e)
    assert isinstance(e, ccxt.PermissionDenied)
    assert "websocket login was not sent" in str(e) and advice in str(e)
    assert server.sockets() == [], "no websocket was opened, no frame sent"


def test_a_frame_with_a_placeholder_sent_on_an_open_socket_is_refused_and_not_sent() -> None:
    """The check on ccxt.pro's client, for a frame that does not come through ``watch``."""
    caught: List[BaseException] = []

    async def body(server: WsServer) -> None:
        ex = attached(ccxt.pro.okx, server)
        try:
            client = ex.client(ex.urls["api"]["ws"] + "/public")
            await client.connect(ex.session)
            await client.send({"op": "subscribe", "args": [{"channel": "tickers", "instId": "BTC-USDT"}]})
            try:
                await client.send({"op": "login", "args": [{"apiKey": ex.apiKey, "sign": "x"}]})
            except BaseException as e:  # noqa: B036
                caught.append(e)
        finally:
            await ex.close()

    server = run(body)
    assert len(caught) == 1 and isinstance(caught[0], tapsign.PolicyDenied)
    frames = [json.loads(g[2]) for g in server.sockets() if g[0] == "frame"]
    assert frames == [{"op": "subscribe", "args": [{"channel": "tickers", "instId": "BTC-USDT"}]}]


def test_a_public_stream_still_goes_out() -> None:
    async def body(server: WsServer) -> None:
        ex = attached(ccxt.pro.okx, server)
        ex.set_markets([market("BTC/USDT", "BTC-USDT")])
        try:
            await asyncio.wait_for(ex.watch_ticker("BTC/USDT"), 1)
        except asyncio.TimeoutError:
            pass  # the server sends no ticker
        finally:
            await ex.close()

    server = run(body)
    frames = [(g[1], json.loads(g[2])) for g in server.sockets() if g[0] == "frame"]
    assert frames == [("/ws/v5/public", {"op": "subscribe", "args": [{"channel": "tickers", "instId": "BTC-USDT"}]})]
